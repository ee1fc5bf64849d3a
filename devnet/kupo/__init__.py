"""The devnet's Kupo v2 HTTP server."""

from devnet.kupo.server import build_app

__all__ = ["build_app"]
