"""Structured logging: structlog with static event names, JSON lines in production.

Nothing is configured at import; a service calls :func:`configure_logging` once at start-up.
"""

from __future__ import annotations

import json as _json
import logging
import sys
import time
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger"]

_CHATTY_LIBRARIES = ("httpx", "httpcore", "websockets", "aiohttp.access", "asyncio")


class _JsonFormatter(logging.Formatter):
    """Standard-library records (third-party libraries) as the same JSON lines structlog writes."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": record.levelname.lower(),
            "service": self._service,
            "timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return _json.dumps(body)


def configure_logging(service: str, level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to one stream as JSON lines (or console text)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter(service) if json else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for chatty in _CHATTY_LIBRARIES:  # one line per HTTP request is noise, not an event
        logging.getLogger(chatty).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; use static event names: ``log.info("tx_submitted", tx_id=...)``."""
    return structlog.get_logger(name) if name else structlog.get_logger()
