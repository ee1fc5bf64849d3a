"""The devnet's Ogmios v6 server (JSON-RPC over WebSocket and HTTP)."""

from devnet.ogmios.server import build_app

__all__ = ["build_app"]
