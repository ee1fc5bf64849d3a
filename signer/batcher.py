"""Group commit: requests queue up while the previous batch is being made durable, then go together.

When nothing waits for the disk (``SIGNER_FSYNC=false`` with the file key store) a request is decided
and committed right in its handler, synchronously: there is no disk wait to share, and no hand-over to
another task or thread to pay for. With fsync on, requests queue and the batcher task takes them in
batches of up to ``batch_max``, deciding each batch on the event loop (CPU only); a batch is answered
only after the audit log's fsync and the SQLite commit. While callers are concurrent the commit runs
on the worker thread, with the log's fsync on the log's own thread alongside, so the loop stays free
to take the next batch's requests; with one caller at a time (no batch of several, and no request
arriving during a commit, for ``CONCURRENT_WINDOW_S``) it runs on the loop, log first, then database,
because hand-overs to other threads and back cost more CPU than the wait. A PKCS#11 token may
block for milliseconds per signature, so with it the whole batch runs on the worker. The queue is
bounded (a full queue is an immediate ``QueueFull``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import Histogram

from common.logging import get_logger
from signer.core import Failed, Outcome, Request, SignerCore
from signer.errors import SignerError

__all__ = ["Batcher", "QueueFull"]

_Item = tuple[Request, "asyncio.Future[Outcome]"]


log = get_logger("signer.batcher")
CONCURRENT_WINDOW_S = 0.1  # how long one sign of concurrent callers keeps batches committing on the worker
BATCH_SIZE = Histogram("creatorpass_signer_batch_size", "Requests decided per group commit",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))


class QueueFull(SignerError):
    """Too many requests are waiting."""


class Batcher:
    def __init__(self, core: SignerCore, *, batch_max: int = 64, queue_limit: int = 1024) -> None:
        self.core = core
        self.batch_max = batch_max
        self.queue_limit = queue_limit
        self._waiting: deque[_Item] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-core")
        self._task: asyncio.Task[None] | None = None
        self._committing = False  # a batch's commit is running on the worker
        self._concurrent_until = 0.0  # loop time until which callers count as concurrent (see _commit_batch)
        self.broken: str | None = None  # set when the disk refused a write; every later request fails
        self.broken_event = asyncio.Event()

    @property
    def inline(self) -> bool:
        """True when a request is decided and committed in its handler (nothing waits for a disk or a token)."""
        return self.core.decide_on_loop and not self.core.durable

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="signer-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(Failed("the signer is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, request: Request) -> Outcome:
        if self.broken:
            return Failed(self.broken)
        if self.inline:
            # Synchronous from here to the outcome: no other request can interleave, nor can a caller's
            # cancellation interrupt the decision half-way.
            BATCH_SIZE.observe(1)
            try:
                return self.core.decide([request]).commit()[0]
            except Exception as exc:
                return self._break(exc, 1)[0]
        if len(self._waiting) >= self.queue_limit:
            raise QueueFull(f"more than {self.queue_limit} requests are waiting")
        loop = asyncio.get_running_loop()
        if self._committing:
            self._concurrent_until = loop.time() + CONCURRENT_WINDOW_S
        future: asyncio.Future[Outcome] = loop.create_future()
        self._waiting.append((request, future))
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        # A caller that goes away cancels only its wait: the batch still decides (and audits) the request,
        # and an identical retry gets the same witnesses back.
        return await future

    def _break(self, exc: Exception, count: int) -> list[Outcome]:
        # The state or the audit log could not be made durable (or a bug): stop signing rather than guess.
        # The message names the failure, never a key (key stores raise none here).
        detail = str(exc) if isinstance(exc, SignerError) else f"internal error ({type(exc).__name__})"
        log.exception("signer_broken", detail=detail)
        self.broken = f"the signer stopped signing: {detail}"
        self.broken_event.set()
        return [Failed(self.broken)] * count

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            batch = [self._waiting.popleft() for _ in range(min(self.batch_max, len(self._waiting)))]
            if len(batch) > 1 or self._waiting:
                self._concurrent_until = loop.time() + CONCURRENT_WINDOW_S
            requests = [request for request, _ in batch]
            BATCH_SIZE.observe(len(requests))
            try:
                outcomes = await self._commit_batch(loop, requests)
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_result(Failed("the signer is shutting down"))
                raise
            except Exception as exc:
                outcomes = self._break(exc, len(batch))
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _commit_batch(self, loop: asyncio.AbstractEventLoop,
                            requests: list[Request]) -> list[Outcome]:
        if not self.core.decide_on_loop:
            return await loop.run_in_executor(self._executor, self.core.process, requests)
        pending = self.core.decide(requests)
        if loop.time() >= self._concurrent_until:
            # One caller at a time: commit right here, the log's fsync then the database's. The loop waits
            # for the disk, but nothing else waits for the loop, and hand-overs to other threads and back
            # would cost more CPU than the wait.
            return pending.commit(overlap=False)
        # Concurrent callers: keep the loop free during the disks' syncs, so their requests are received
        # and queue up for the next batch (with the loop blocked they would trickle in one by one).
        self._committing = True
        try:
            return await loop.run_in_executor(self._executor, pending.commit)
        finally:
            self._committing = False
