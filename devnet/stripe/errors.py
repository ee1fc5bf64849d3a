"""Stripe's error shapes: ``{"error": {"type", "code", "decline_code", "message", "param", ...}}``.

The status decides which exception the ``stripe`` library raises: 400/404 ``InvalidRequestError`` (or
``IdempotencyError`` when ``type`` is ``idempotency_error``), 401 ``AuthenticationError``, 402
``CardError``, 409 ``APIError`` (retried by the library).
"""

from __future__ import annotations

from typing import Any

__all__ = ["StripeError", "card_error", "invalid_request", "not_found"]

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An API error answered in Stripe's shape. ``store_idempotent`` is False for errors raised before
    the endpoint started executing (Stripe keeps no idempotent result for those)."""

    def __init__(self, status: int, error_type: str, message: str, *, code: str | None = None,
                 param: str | None = None, decline_code: str | None = None,
                 extra: dict[str, Any] | None = None, store_idempotent: bool = True,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.store_idempotent = store_idempotent
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_URL + self.code.replace("_", "-")
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None,
                    status: int = 400, executed: bool = False) -> StripeError:
    """A 400 ``invalid_request_error``; by default a validation error (not kept for idempotency)."""
    return StripeError(status, "invalid_request_error", message, param=param, code=code,
                       store_idempotent=executed)


def not_found(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id[:200]}'",
                       code="resource_missing", param=param, store_idempotent=True)


def card_error(message: str, code: str, *, decline_code: str | None = None, param: str | None = None,
               extra: dict[str, Any] | None = None) -> StripeError:
    return StripeError(402, "card_error", message, code=code, decline_code=decline_code, param=param,
                       extra=extra)
