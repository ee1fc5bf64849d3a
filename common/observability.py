"""A small threaded HTTP side-server for ``GET /health`` and Prometheus ``GET /metrics``.

It runs in its own thread so a busy or blocked event loop cannot hide behind it being up, and so
sync and async services use it alike. ``check`` returns ``(status, body)``; statuses follow Kupo:
200 ready, 202 starting or catching up, 503 down.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["HealthCheck", "HealthServer"]

HealthCheck = Callable[[], tuple[int, dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            try:
                status, body = self.server.check()
            except Exception as exc:  # a failing check is a 503, never a dead side-server
                status, body = 503, {"status": "error", "error": type(exc).__name__}
            self._send(status, json.dumps(body).encode(), "application/json")
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b'{"error": "not found"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: metrics scrapes are not events
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    check: HealthCheck
    registry: CollectorRegistry


class HealthServer:
    """Serve /health and /metrics on ``host:port`` (port 0 = ephemeral; see ``.port``)."""

    def __init__(self, host: str, port: int, check: HealthCheck, registry: CollectorRegistry = REGISTRY) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.check = check
        self._server.registry = registry
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
