"""The indexer's exception tree: one root, typed upstream failures, typed bad input.

Upstream errors keep what the protocol said (Ogmios' JSON-RPC ``code``/``message``/``data``, Kupo's
HTTP status and ``hint``) so the gRPC layer can map them to status codes without guessing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IndexerError",
    "InvalidArgument",
    "KupoError",
    "KupoHttpError",
    "KupoUnavailable",
    "NotFound",
    "OgmiosError",
    "OgmiosRpcError",
    "OgmiosTimeout",
    "OgmiosUnavailable",
    "ResponseTooLarge",
    "StoreError",
]


class IndexerError(Exception):
    """Root of every error the indexer raises on purpose."""


class InvalidArgument(IndexerError):
    """A caller sent something malformed (address, hex, out-ref, size); the message says what."""


class NotFound(IndexerError):
    """The thing asked for is not known to the indexer."""


class StoreError(IndexerError):
    """The SQLite store is unusable or inconsistent with the configuration."""


class OgmiosError(IndexerError):
    """Any failure talking to Ogmios."""


class OgmiosUnavailable(OgmiosError):
    """No WebSocket connection, or it dropped while the request was in flight."""


class OgmiosTimeout(OgmiosError):
    """Ogmios did not answer within the request's timeout."""

    def __init__(self, method: str, timeout_s: float) -> None:
        super().__init__(f"Ogmios did not answer {method} within {timeout_s:g} s")
        self.method = method
        self.timeout_s = timeout_s


class OgmiosRpcError(OgmiosError):
    """Ogmios answered with a JSON-RPC ``error`` object (a ledger refusal, a bad request, ...)."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: Ogmios error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def is_ledger_refusal(self) -> bool:
        """Transaction submission/evaluation failures live in 3000..3999."""
        return 3000 <= self.code <= 3999


class KupoError(IndexerError):
    """Any failure talking to Kupo."""


class KupoUnavailable(KupoError):
    """Kupo could not be reached, timed out, or answered 503."""


class KupoHttpError(KupoError):
    """Kupo answered an HTTP error with a ``{"hint": ...}`` body."""

    def __init__(self, status: int, hint: str, path: str) -> None:
        super().__init__(f"Kupo answered {status} for {path}: {hint}")
        self.status = status
        self.hint = hint
        self.path = path


class ResponseTooLarge(IndexerError):
    """An upstream answer exceeded the configured size limit."""
