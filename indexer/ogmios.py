"""An async Ogmios v6 JSON-RPC client over one persistent WebSocket.

Requests carry integer ids and may be pipelined: :meth:`OgmiosClient.send` writes a request and returns a
future at once; a single reader task routes each answer to its future by id. A JSON-RPC ``error`` becomes
:class:`OgmiosRpcError`; a dropped connection fails every request in flight with :class:`OgmiosUnavailable`;
:meth:`request` adds a timeout (:class:`OgmiosTimeout`) and reconnects lazily with jittered backoff.

Chain-sync and mempool state live on the connection, so the chain follower and the mempool monitor each
own a client and watch :attr:`OgmiosClient.generation` to know when they must start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from common.logging import get_logger
from indexer import metrics
from indexer.errors import OgmiosRpcError, OgmiosTimeout, OgmiosUnavailable

__all__ = ["OgmiosClient"]

log = get_logger(__name__)
Decoder = Callable[[msgspec.Raw], Any]
_Pending = tuple["asyncio.Future[Any]", str, float, Decoder]
_BLOCKING_METHODS = frozenset({"nextBlock", "acquireMempool"})
_PREFIXES: dict[str, str] = {}


class _Envelope(msgspec.Struct):
    """A JSON-RPC answer with ``result`` left as raw JSON: routed by id, decoded by whoever asked."""

    result: msgspec.Raw = msgspec.Raw(b"null")
    error: Any = msgspec.UNSET
    id: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_decode_json: Decoder = msgspec.json.decode


class OgmiosClient:
    """One WebSocket to Ogmios; ``name`` labels logs and metrics (``queries``, ``chainsync``, ``mempool``)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "queries",
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        keepalive_s: float | None = 10.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.url = url
        self.name = name
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.max_message_bytes = max_message_bytes
        self.max_backoff_s = max_backoff_s
        self.generation = 0  # bumped on every new connection
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._connect_lock = asyncio.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self.closed_event = asyncio.Event()
        self.closed_event.set()
        self._latency: dict[str, Any] = {}

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def connect(self) -> None:
        """Open the WebSocket (one attempt); raise OgmiosUnavailable on failure."""
        async with self._connect_lock:
            if self._ws is not None:
                return
            if self._closed:
                raise OgmiosUnavailable(f"Ogmios client {self.name} is closed")
            try:
                ws = await connect(
                    self.url, open_timeout=self.connect_timeout_s, ping_interval=self.keepalive_s,
                    ping_timeout=self.keepalive_s, close_timeout=1.0, max_size=self.max_message_bytes,
                    max_queue=256, compression=None, proxy=None, user_agent_header="creatorpass-indexer",
                )
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self._failures += 1
                delay = min(self.max_backoff_s, 0.05 * 2 ** min(self._failures, 10))
                self._retry_at = time.monotonic() + delay * (0.5 + random.random() / 2)
                reason = str(exc) or type(exc).__name__
                raise OgmiosUnavailable(f"cannot connect to Ogmios at {self.url}: {reason}") from None
            if self.generation:
                metrics.RECONNECTS.labels(upstream=f"ogmios_{self.name}").inc()
            self._ws = ws
            self._failures = 0
            self.generation += 1
            self.closed_event = asyncio.Event()
            self._reader = asyncio.create_task(self._read(ws), name=f"ogmios-{self.name}-reader")
            log.info("ogmios_connected", connection=self.name, url=self.url, generation=self.generation)

    async def connect_with_backoff(self) -> None:
        """Connect, retrying with jittered exponential backoff until it works (or the task is cancelled)."""
        while True:
            try:
                await self.connect()
                return
            except OgmiosUnavailable as exc:
                delay = max(0.0, self._retry_at - time.monotonic())
                log.warning("ogmios_connect_failed", connection=self.name, error=str(exc), retry_in_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def ensure_connected(self) -> None:
        """Reconnect lazily, failing fast while a previous attempt's backoff has not elapsed."""
        if self._ws is not None:
            return
        if time.monotonic() < self._retry_at:
            raise OgmiosUnavailable(f"Ogmios at {self.url} is unreachable; retrying shortly")
        await self.connect()

    async def close(self) -> None:
        self._closed = True
        await self._drop("client closed")

    async def disconnect(self) -> None:
        """Drop the current connection (the next request reconnects)."""
        await self._drop("disconnected on request")

    async def _drop(self, reason: str) -> None:
        ws, reader = self._ws, self._reader
        self._ws = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._fail_pending(reason)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future, method, _, _ in pending.values():
            if not future.done():
                future.set_exception(OgmiosUnavailable(f"Ogmios connection lost during {method}: {reason}"))
        self.closed_event.set()

    async def _read(self, ws: ClientConnection) -> None:
        reason = "connection closed"
        try:
            while True:
                raw = await ws.recv(decode=False)
                self._dispatch(raw)
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a protocol violation: drop the connection, never hang requests
            reason = f"unreadable message: {type(exc).__name__}: {exc}"
            log.error("ogmios_bad_message", connection=self.name, error=reason)
        finally:
            if self._ws is ws:
                self._ws = None
                log.warning("ogmios_disconnected", connection=self.name, reason=reason)
                with contextlib.suppress(Exception):
                    await ws.close()
                self._fail_pending(reason)

    def _dispatch(self, raw: bytes | str) -> None:
        message = _ENVELOPE.decode(raw)
        request_id = message.id
        entry = self._pending.pop(request_id, None) if type(request_id) is int else None
        if entry is None:
            return  # an answer to a request that timed out, or a stray message
        future, method, started, decode = entry
        if method not in _BLOCKING_METHODS:  # their latency is the chain's pace, not Ogmios'
            histogram = self._latency.get(method)
            if histogram is None:
                histogram = self._latency[method] = metrics.OGMIOS_LATENCY.labels(method=method)
            histogram.observe(time.perf_counter() - started)
        if future.done():
            return
        error = message.error
        if error is not msgspec.UNSET and error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            msg = error.get("message", "") if isinstance(error, dict) else str(error)
            future.set_exception(OgmiosRpcError(method, code if isinstance(code, int) else -32603, str(msg),
                                                error.get("data") if isinstance(error, dict) else None))
            return
        try:
            future.set_result(decode(message.result))
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
            future.set_exception(OgmiosRpcError(method, -32603, f"undecodable result: {exc}"))

    async def send(self, method: str, params: Any = None, decode: Decoder = _decode_json) -> asyncio.Future[Any]:
        """Write one request now; the returned future resolves with ``decode(result)`` (plain JSON by default)."""
        ws = self._ws
        if ws is None:
            raise OgmiosUnavailable(f"not connected to Ogmios at {self.url}")
        self._next_id += 1
        request_id = self._next_id
        if params is None:  # the chain follower's hot path: no dict, no encoder
            prefix = _PREFIXES.get(method) or _PREFIXES.setdefault(
                method, '{"jsonrpc":"2.0","method":' + orjson.dumps(method).decode() + ',"id":')
            text = f"{prefix}{request_id}}}"
        else:
            text = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}).decode()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, method, time.perf_counter(), decode)
        try:
            await ws.send(text)
        except ConnectionClosed:
            self._pending.pop(request_id, None)
            raise OgmiosUnavailable(f"Ogmios connection lost while sending {method}") from None
        return future

    async def send_many(self, requests: Iterable[tuple[str, Any]]) -> list[asyncio.Future[Any]]:
        return [await self.send(method, params) for method, params in requests]

    async def send_repeated(self, method: str, count: int, decode: Decoder = _decode_json
                            ) -> list[asyncio.Future[Any]]:
        """``count`` parameterless requests (pipelined ``nextBlock``) written with one socket write.

        Uses the websockets connection's own send context (state checks, flow control, error handling)
        and its sans-I/O protocol to frame the messages, then writes the frames together; falls back to
        one :meth:`send` per request if that API is not there.
        """
        ws = self._ws
        if ws is None:
            raise OgmiosUnavailable(f"not connected to Ogmios at {self.url}")
        protocol, transport = getattr(ws, "protocol", None), getattr(ws, "transport", None)
        if protocol is None or transport is None or not hasattr(ws, "send_context"):
            return [await self.send(method, None, decode) for _ in range(count)]
        prefix = _PREFIXES.get(method) or _PREFIXES.setdefault(
            method, '{"jsonrpc":"2.0","method":' + orjson.dumps(method).decode() + ',"id":')
        loop, started, pending = asyncio.get_running_loop(), time.perf_counter(), self._pending
        futures = []
        try:
            async with ws.send_context():
                for _ in range(count):
                    self._next_id += 1
                    future: asyncio.Future[Any] = loop.create_future()
                    pending[self._next_id] = (future, method, started, decode)
                    futures.append(future)
                    protocol.send_text(f"{prefix}{self._next_id}}}".encode())
                # Framing text messages on an open connection never asks for a half-close (an empty
                # chunk), so the frames can go out as one write; the context's exit sends nothing more.
                transport.write(b"".join(protocol.data_to_send()))
        except ConnectionClosed:
            raise OgmiosUnavailable(f"Ogmios connection lost while sending {method}") from None
        return futures

    async def request(self, method: str, params: Any = None, *, timeout_s: float | None = None,
                      idempotent: bool = True) -> Any:
        """Send and await one request. ``timeout_s=0`` waits forever (chain-sync / mempool blocking calls).

        A request that could not be written is retried once on a fresh connection; one whose connection
        dropped after it was written is retried only when ``idempotent``.
        """
        for attempt in (1, 2):
            await self.ensure_connected()
            try:
                future = await self.send(method, params)
            except OgmiosUnavailable:
                if attempt == 2:
                    raise
                continue
            try:
                return await self.wait(future, method, timeout_s)
            except OgmiosUnavailable:
                if attempt == 2 or not idempotent:
                    raise
        raise AssertionError("unreachable")

    async def wait(self, future: asyncio.Future[Any], method: str, timeout_s: float | None = None) -> Any:
        """Await a future from :meth:`send` with the client's (or the given) timeout."""
        limit = self.request_timeout_s if timeout_s is None else timeout_s
        if not limit:
            return await future
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(future)
        except TimeoutError:
            for request_id, entry in list(self._pending.items()):
                if entry[0] is future:
                    del self._pending[request_id]
            future.cancel()
            raise OgmiosTimeout(method, limit) from None
