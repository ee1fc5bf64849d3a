"""The one place errors become HTTP responses (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from common.logging import get_logger
from gateway.lib.errors import GatewayError

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem_response"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger("gateway.http")

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("body_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem_response(error: GatewayError, request_id: str = "") -> Response[dict[str, Any]]:
    return Response(
        content=error.body(request_id),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def _gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[dict[str, Any]]:
    if exc.status >= 500:
        log.warning("gateway_problem", status=exc.status, code=exc.code, detail=exc.detail, path=request.url.path)
    return problem_response(exc, _request_id(request))


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    detail = str(exc.detail) if exc.detail else "The request is not valid"
    problems: list[dict[str, Any]] = []
    if isinstance(exc.extra, list):
        for item in exc.extra[:20]:
            if isinstance(item, dict):
                problems.append({k: str(v) for k, v in item.items() if k in ("key", "message", "source")})
    error = GatewayError(_validation_detail(detail, problems), code="invalid_request", extra={"errors": problems})
    error.status, error.title = 400, "Invalid request"
    return problem_response(error, _request_id(request))


def _validation_detail(detail: str, problems: list[dict[str, Any]]) -> str:
    if not problems:
        return detail
    first = problems[0]
    where = f"{first.get('source', 'body')} field {first['key']!r}: " if first.get("key") else ""
    return f"Invalid request: {where}{first.get('message', detail)}"


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    code, title = _HTTP_CODES.get(status, ("http_error", "HTTP error"))
    detail = str(exc.detail) if exc.detail else title
    if status >= 500:
        log.error("gateway_http_exception", status=status, path=request.url.path)
        detail = "Internal error"
    error = GatewayError(detail, code=code, headers=dict(exc.headers or {}))
    error.status, error.title = status, title
    return problem_response(error, _request_id(request))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("gateway_unhandled_exception", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(GatewayError("Internal error; the request id identifies it in the logs"),
                            _request_id(request))


exception_handlers: ExceptionHandlersMap = {
    GatewayError: _gateway_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
