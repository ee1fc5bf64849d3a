"""Request ids, structured access logs and HTTP metrics, as one plain ASGI middleware."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from common.logging import get_logger
from gateway.system.metrics import HTTP_LATENCY, HTTP_REQUESTS

__all__ = ["RequestContextMiddleware"]

log = get_logger("gateway.access")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Gives every request an id (a caller's well-formed ``X-Request-Id`` is kept), logs and counts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            HTTP_REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
            HTTP_LATENCY.labels(scope.get("method", ""), route).observe(elapsed)
            if route not in ("/metrics", "/health"):
                log.info("http_request", method=scope.get("method"), route=route, status=status,
                         ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")


def _route_template(scope: Scope) -> str:
    """The matched route's full path template (bounded label cardinality), or 'unmatched'."""
    template = scope.get("path_template")
    if template:
        return str(template)
    return "unmatched"
