"""Group commit: requests queue up while the previous batch is being made durable, then go together.

With one caller each batch holds one request (one fsync per signature); with many callers a batch
holds up to ``batch_max`` requests and one fsync covers them all. Decisions are made on the event loop
(CPU only); the commit, which waits for the disk when fsync is on, runs on one worker thread. The
queue is bounded (a full queue is an immediate ``QueueFull``).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Histogram

from common.logging import get_logger
from signer.core import BurnRequest, Failed, MintRequest, Outcome, SignerCore
from signer.errors import SignerError

__all__ = ["Batcher", "QueueFull"]

_Item = tuple[BurnRequest | MintRequest, "asyncio.Future[Outcome]"]


log = get_logger("signer.batcher")
BATCH_SIZE = Histogram("creatorpass_signer_batch_size", "Requests decided per group commit",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))


class QueueFull(SignerError):
    """Too many requests are waiting."""


class Batcher:
    def __init__(self, core: SignerCore, *, batch_max: int = 64, queue_limit: int = 1024) -> None:
        self.core = core
        self.batch_max = batch_max
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_limit)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-core")
        self._task: asyncio.Task[None] | None = None
        self.broken: str | None = None  # set when the disk refused a write; every later request fails
        self.broken_event = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="signer-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_result(Failed("the signer is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, request: BurnRequest | MintRequest) -> Outcome:
        if self.broken:
            return Failed(self.broken)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((request, future))
        except asyncio.QueueFull:
            raise QueueFull(f"more than {self._queue.maxsize} requests are waiting") from None
        # A caller that goes away cancels only its wait: the batch still decides (and audits) the request,
        # and an identical retry gets the same witnesses back.
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            requests = [request for request, _ in batch]
            BATCH_SIZE.observe(len(requests))
            try:
                # Deciding is CPU work and runs here; committing waits for the disk, so with fsync on it
                # runs on the worker thread while the loop keeps accepting the next batch's requests.
                # A PKCS#11 token may take milliseconds per signature (a network HSM, more): then the whole
                # batch runs on the worker.
                outcomes: list[Outcome]
                if not self.core.decide_on_loop:
                    outcomes = await loop.run_in_executor(self._executor, self.core.process, requests)
                elif self.core.durable:
                    pending = self.core.decide(requests)
                    outcomes = await loop.run_in_executor(self._executor, pending.commit)
                else:
                    outcomes = self.core.decide(requests).commit()
            except Exception as exc:
                # The state or the audit log could not be made durable (or a bug): stop signing rather
                # than guess. The message names the failure, never a key (key stores raise none here).
                detail = str(exc) if isinstance(exc, SignerError) else f"internal error ({type(exc).__name__})"
                log.exception("signer_broken", detail=detail)
                self.broken = f"the signer stopped signing: {detail}"
                self.broken_event.set()
                outcomes = [Failed(self.broken)] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
