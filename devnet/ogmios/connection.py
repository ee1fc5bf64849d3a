"""One Ogmios WebSocket connection: routing frames to the four mini-protocols, ordered answers per
protocol, an inactivity watchdog, and a fast path for ``nextBlock`` when its answer is ready at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import WSMsgType, web

from devnet.ogmios.rpc import Request, RpcFault, error_bytes, parse_request, result_bytes
from devnet.ogmios.session import CHAIN_SYNC, PROTOCOLS, Session, protocol_of

__all__ = ["Connection"]


class Connection:
    def __init__(
        self, ws: web.WebSocketResponse, session: Session, metrics: Any, *, max_in_flight: int, idle_timeout_s: float
    ) -> None:
        self.ws = ws
        self.session = session
        self.metrics = metrics
        self.idle_timeout_s = idle_timeout_s
        self.queues = {name: asyncio.Queue[Request](maxsize=max_in_flight) for name in PROTOCOLS}
        self.busy = dict.fromkeys(PROTOCOLS, 0)  # queued or running requests, per mini-protocol
        self.last_activity = time.monotonic()

    async def serve(self) -> None:
        tasks = [asyncio.create_task(self._worker(name)) for name in PROTOCOLS]
        tasks.append(asyncio.create_task(self._watchdog()))
        try:
            await self._read_loop()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, frame: bytes) -> None:
        self.last_activity = time.monotonic()
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_frame(frame, WSMsgType.TEXT)

    async def _read_loop(self) -> None:
        ws, metrics = self.ws, self.metrics
        while True:
            message = await ws.receive()
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return  # CLOSE / ERROR (e.g. a frame over the size limit: aiohttp closed with 1009)
            self.last_activity = time.monotonic()
            metrics.messages += 1
            try:
                request = parse_request(message.data)
            except RpcFault as fault:
                metrics.unrouted += 1
                await self.send(error_bytes(None, fault, getattr(fault, "request_id", None)))
                continue
            protocol = protocol_of(request.method)
            if protocol is None:
                metrics.unrouted += 1
                await self.send(await self.session.dispatch(request))
            elif protocol == CHAIN_SYNC and not self.busy[CHAIN_SYNC] and await self._next_block_now(request):
                continue
            else:
                self.busy[protocol] += 1
                await self.queues[protocol].put(request)

    async def _next_block_now(self, request: Request) -> bool:
        """Answer a ``nextBlock`` inline when the cursor has it (no queue hop); False to queue it."""
        if request.method != "nextBlock" or request.params not in (None, {}):
            return False
        try:
            answer = self.session.cursor.step()
        except RpcFault as fault:
            await self.send(error_bytes(request.method, fault, request.id))
            return True
        if answer is None:
            return False  # at the tip: the worker waits for the next block
        await self.send(result_bytes(request.method, answer, request.id))
        return True

    async def _worker(self, protocol: str) -> None:
        queue = self.queues[protocol]
        while True:
            request = await queue.get()
            try:
                frame = await self.session.dispatch(request)
                if self.ws.closed:
                    return
                await self.send(frame)
            finally:
                self.busy[protocol] -= 1

    async def _watchdog(self) -> None:
        """Close after ``idle_timeout_s`` without traffic while no request is pending (Ogmios' --timeout)."""
        while True:
            await asyncio.sleep(max(0.05, self.idle_timeout_s / 4))
            idle_s = time.monotonic() - self.last_activity
            if idle_s >= self.idle_timeout_s and not any(self.busy.values()):
                await self.ws.close(code=1000, message=b"inactivity timeout")
                return
