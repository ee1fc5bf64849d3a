"""The gateway's one error tree and its one mapping to ``application/problem+json``.

Services raise these; controllers never build error responses themselves. Every problem body is
``{type, title, status, code, detail, error, request_id, …extra}``; ``error`` repeats ``detail`` so the
seed's frontend (which reads ``body.error``) works unchanged. Anything else that escapes a handler is
logged with its stack and answered as a bare 500 problem: no stack trace ever reaches a client.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadGateway",
    "ClientError",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "NotFound",
    "PaymentRequired",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
]


class GatewayError(Exception):
    """Base of every error the gateway answers deliberately."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self, request_id: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://creatorpass.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "error": self.detail,
        }
        if request_id:
            body["request_id"] = request_id
        body.update(self.extra)
        return body


class ClientError(GatewayError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(GatewayError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="creatorpass"'})
        super().__init__(detail, **kw)


class PaymentRequired(GatewayError):
    status, code, title = 402, "payment_required", "Payment required"


class Forbidden(GatewayError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(GatewayError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(GatewayError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(GatewayError):
    status, code, title = 422, "unprocessable", "Unprocessable request"


class TooManyRequests(GatewayError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, int(retry_after_s)))
        super().__init__(detail, headers=headers, **kw)


class BadGateway(GatewayError):
    status, code, title = 502, "upstream_error", "Upstream error"


class ServiceUnavailable(GatewayError):
    status, code, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str, *, retry_after_s: int | None = None, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(1, int(retry_after_s)))
        super().__init__(detail, headers=headers, **kw)
