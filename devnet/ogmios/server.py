"""The devnet's Ogmios v6 server: JSON-RPC over WebSocket and HTTP ``POST /`` on one port (default 1337).

WebSocket: each frame is one request; requests of one mini-protocol are answered in order (so clients
may pipeline), the four mini-protocols run concurrently, like Ogmios. Limits: ``max_message_bytes`` per
frame or body (larger frames close the socket with 1009, larger bodies get HTTP 413), ``max_in_flight``
queued requests per mini-protocol, ``idle_timeout_s`` without traffic or pending work, and
``max_connections`` open WebSockets (more get HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from devnet.ogmios.blockjson import BlockJsonCache, warm_cache
from devnet.ogmios.chainsync import TipCache
from devnet.ogmios.connection import Connection
from devnet.ogmios.encoding import dumps
from devnet.ogmios.rpc import INVALID_REQUEST, RpcFault, error_bytes, parse_request
from devnet.ogmios.session import Session, SharedState
from devnet.ogmios.txjson import TxJsonOptions

__all__ = ["OGMIOS_KEY", "OGMIOS_VERSION", "OgmiosServer", "build_app"]

log = logging.getLogger("devnet.ogmios")

OGMIOS_VERSION: Final = "v6.14.0 (creatorpass devnet)"
_JSON: Final = "application/json;charset=utf-8"
OGMIOS_KEY: Final = web.AppKey("ogmios", object)
_CORS: Final = {"Access-Control-Allow-Origin": "*"}
_DASHBOARD: Final = (
    "<!DOCTYPE html><html><head><title>Ogmios (devnet)</title></head><body><h1>Ogmios v6 — devnet</h1>"
    "<p>JSON-RPC over WebSocket at <code>ws://HOST:PORT/</code> or HTTP <code>POST /</code>; "
    "see <a href='/health'>/health</a> and <a href='/metrics'>/metrics</a>.</p></body></html>"
)


class _Metrics:
    def __init__(self) -> None:
        self.active = 0
        self.total = 0
        self.messages = 0
        self.unrouted = 0
        self.durations_ms: list[float] = []

    def session_durations(self) -> dict[str, float]:
        if not self.durations_ms:
            return {"max": 0, "mean": 0, "min": 0}
        d = self.durations_ms
        return {"max": max(d), "mean": sum(d) / len(d), "min": min(d)}


class OgmiosServer:
    def __init__(
        self,
        chain: Any,
        *,
        tx_opts: TxJsonOptions,
        max_in_flight: int,
        idle_timeout_s: float,
        max_message_bytes: int,
        max_connections: int = 1024,
    ) -> None:
        self.max_connections = max_connections
        self.shared = SharedState(chain, tx_opts, BlockJsonCache(tx_opts), TipCache(chain))
        self.max_in_flight = max_in_flight
        self.idle_timeout_s = idle_timeout_s
        self.max_message_bytes = max_message_bytes
        self.metrics = _Metrics()
        self.started = datetime.now(UTC)
        self.sockets: set[web.WebSocketResponse] = set()

    async def background_warming(self, app: web.Application) -> AsyncIterator[None]:
        """Serialize blocks as they are produced, so the first chain-sync client finds them cached."""
        task = asyncio.create_task(warm_cache(self.shared.chain, self.shared.blocks))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def serialize_block(self, block: Any) -> None:
        params = self.shared.chain.params
        try:
            self.shared.blocks.get(block, {"major": int(params.protocol_major), "minor": int(params.protocol_minor)})
        except Exception:  # never break block production; chain-sync will report the problem on demand
            log.exception("ogmios_block_serialization_failed block=%s", getattr(block, "id", "?"))

    async def close_sockets(self, app: web.Application) -> None:
        """On shutdown, close every WebSocket (clients waiting at the tip would hold the server)."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutdown")

    # -- HTTP -----------------------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.websocket(request)
        return web.Response(text=_DASHBOARD, content_type="text/html")

    async def post(self, request: web.Request) -> web.Response:
        self.metrics.messages += 1
        body = await _read_limited(request, self.max_message_bytes)
        if body is None:
            fault = RpcFault(
                INVALID_REQUEST,
                f"Invalid request: the request body exceeds {self.max_message_bytes} bytes.",
                with_method=False,
            )
            return _json_response(error_bytes(None, fault, None), status=413)
        frame, is_error = await self._answer(Session(self.shared), body)
        return _json_response(frame, status=400 if is_error else 200)

    async def health(self, request: web.Request) -> web.Response:
        chain = self.shared.chain
        tip = chain.tip
        slot = chain.current_slot()
        epoch_length = chain.genesis.epoch_length
        sync = 1.0 if tip is not None else 0.0
        body = {
            "startTime": self.started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "lastKnownTip": chain.tip_json(),
            "lastTipUpdate": _slot_time(chain, tip.slot) if tip is not None else None,
            "networkSynchronization": sync,
            "currentEra": "conway",
            "metrics": {
                "activeConnections": self.metrics.active,
                "totalConnections": self.metrics.total,
                "sessionDurations": self.metrics.session_durations(),
                "totalMessages": self.metrics.messages,
                "totalUnrouted": self.metrics.unrouted,
            },
            "connectionStatus": "connected",
            "currentEpoch": slot // epoch_length,
            "slotInEpoch": slot % epoch_length,
            "version": OGMIOS_VERSION,
        }
        network = _network_name(chain.genesis.network_magic)
        if network is not None:
            body["network"] = network
        return _json_response(dumps(body), status=200 if sync == 1.0 else 202)

    async def prometheus(self, request: web.Request) -> web.Response:
        m = self.metrics
        lines = [
            f"ogmios_active_connections {m.active}",
            f"ogmios_total_connections {m.total}",
            f"ogmios_total_messages {m.messages}",
            f"ogmios_total_unrouted {m.unrouted}",
            f"ogmios_network_synchronization {1.0 if self.shared.chain.tip is not None else 0.0}",
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    # -- WebSocket ------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if self.metrics.active >= self.max_connections:
            fault = RpcFault(-32000, f"Too many connections (at most {self.max_connections}); retry later.")
            return _json_response(error_bytes(None, fault, None), status=503)
        ws = web.WebSocketResponse(max_msg_size=self.max_message_bytes, autoping=True)
        await ws.prepare(request)
        self.sockets.add(ws)
        self.metrics.active += 1
        self.metrics.total += 1
        opened = time.monotonic()
        connection = Connection(
            ws,
            Session(self.shared),
            self.metrics,
            max_in_flight=self.max_in_flight,
            idle_timeout_s=self.idle_timeout_s,
        )
        try:
            await connection.serve()
        finally:
            self.metrics.active -= 1
            self.sockets.discard(ws)
            self.metrics.durations_ms.append((time.monotonic() - opened) * 1000)
            del self.metrics.durations_ms[:-1000]
            if not ws.closed:
                await ws.close()
        return ws

    async def _answer(self, session: Session, body: bytes) -> tuple[bytes, bool]:
        try:
            parsed = parse_request(body)
        except RpcFault as fault:
            self.metrics.unrouted += 1
            return error_bytes(None, fault, getattr(fault, "request_id", None)), True
        return await session.run(parsed)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_response(frame: bytes, status: int) -> web.Response:
    return web.Response(body=frame, status=status, headers={**_CORS, "Content-Type": _JSON})


def _slot_time(chain: Any, slot: int) -> str:
    seconds = chain.genesis.system_start_s + slot * chain.genesis.slot_length_s
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _network_name(magic: int) -> str | None:
    return {764824073: "mainnet", 1: "preprod", 2: "preview", 4: "sanchonet"}.get(magic)


def build_app(
    chain: Any,
    *,
    include_transaction_cbor: bool = False,
    include_script_cbor: bool = False,
    include_metadata_cbor: bool = False,
    max_in_flight: int = 1000,
    idle_timeout_s: float = 90.0,
    max_message_bytes: int = 4 * 1024 * 1024,
    max_connections: int = 1024,
) -> web.Application:
    """The Ogmios aiohttp application over ``chain`` (run it with ``web.AppRunner``/``web.TCPSite``)."""
    server = OgmiosServer(
        chain,
        tx_opts=TxJsonOptions(include_transaction_cbor, include_script_cbor, include_metadata_cbor),
        max_in_flight=max_in_flight,
        idle_timeout_s=idle_timeout_s,
        max_message_bytes=max_message_bytes,
        max_connections=max_connections,
    )
    app = web.Application(client_max_size=max_message_bytes)
    app[OGMIOS_KEY] = server
    app.on_shutdown.append(server.close_sockets)
    app.cleanup_ctx.append(server.background_warming)
    listeners = getattr(chain, "block_listeners", None)
    if isinstance(listeners, list):  # serialize each block as it is produced (chain-sync finds it ready)
        listeners.append(server.serialize_block)
    app.router.add_get("/", server.root)
    app.router.add_post("/", server.post)
    app.router.add_get("/health", server.health)
    app.router.add_get("/metrics", server.prometheus)
    return app
