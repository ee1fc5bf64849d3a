"""The engine: a bounded queue, a batcher that groups compatible requests, and worker threads.

Flow: ``submit`` appends a request to the queue (full → QueueFull) → the batcher, once a worker is
free, takes the oldest request plus every queued request with the same batch key (model, size,
steps) up to ``max_batch`` images, waiting at most ``max_wait_s`` after the oldest arrived for the
batch to fill → a worker thread runs the model (and the safety checker) → PNGs are encoded in a
separate pool while the next batch already runs → events go back on each request's own queue.
``cancel`` (caller gone or deadline passed) takes a queued request out at once, freeing its slot; a
running batch stops between steps when all its callers are gone, else their images are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from common.logging import get_logger
from inference import metrics
from inference.errors import QueueFull, RequestCancelled
from inference.events import (
    DoneEvent,
    Event,
    FailedEvent,
    GenerateSpec,
    ImageEvent,
    ProgressEvent,
    Timings,
)
from inference.model import GenerateResult, ImageJob, Model, Stage
from inference.safety import SafetyChecker

__all__ = ["Engine", "Request", "encode_png"]

log = get_logger(__name__)


def encode_png(image: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


class Request:
    """One Generate call inside the engine. Its event queue holds at most steps + images + a few
    events, so it needs no bound of its own."""

    def __init__(self, spec: GenerateSpec, model: Model, deadline: float | None) -> None:
        self.spec = spec
        self.model = model
        self.key = (spec.model, model.batch_key(spec.width, spec.height, spec.steps))
        self.deadline = deadline  # time.perf_counter() value, or None
        self.enqueued_at = time.perf_counter()
        self.started_at = 0.0
        self.cancelled = False  # read from worker threads
        self.finished = False
        self._events: asyncio.Queue[Event] = asyncio.Queue()

    def emit(self, event: Event) -> None:
        if not self.cancelled and not self.finished:
            self._events.put_nowait(event)
            if isinstance(event, DoneEvent | FailedEvent):
                self.finished = True

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, DoneEvent | FailedEvent):
                return


class Engine:
    def __init__(self, *, queue_max: int, max_batch: int, max_wait_s: float, workers: int = 1,
                 png_workers: int = 2, png_compress_level: int = 1, safety: SafetyChecker | None = None) -> None:
        self.queue_max = queue_max
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.png_compress_level = png_compress_level
        self.safety = safety
        self._pending: list[Request] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="inference")
        self._png = ThreadPoolExecutor(png_workers, thread_name_prefix="png")
        self._batcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._batcher = asyncio.create_task(self._batch_loop(), name="inference-batcher")

    async def close(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
        for request in self._pending:
            request.emit(FailedEvent("UNAVAILABLE", "the inference server is shutting down"))
        self._pending.clear()
        metrics.QUEUE_DEPTH.set(0)
        if self._running:
            await asyncio.wait(self._running, timeout=10)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._png.shutdown(wait=False, cancel_futures=True)

    def submit(self, spec: GenerateSpec, model: Model, timeout_s: float | None = None) -> Request:
        if len(self._pending) >= self.queue_max:
            raise QueueFull(f"the queue is full ({self.queue_max} requests waiting); retry later")
        deadline = time.perf_counter() + timeout_s if timeout_s is not None else None
        request = Request(spec, model, deadline)
        self._pending.append(request)
        metrics.QUEUE_DEPTH.set(len(self._pending))
        request.emit(ProgressEvent(Stage.QUEUED, 0, spec.steps, queue_position=len(self._pending)))
        self._arrived.set()
        return request

    def cancel(self, request: Request) -> None:
        """The caller went away: free its queue slot now, or make its running batch skip it."""
        if request.finished or request.cancelled:
            return
        request.cancelled = True
        if request in self._pending:
            self._pending.remove(request)
            metrics.QUEUE_DEPTH.set(len(self._pending))
            self._arrived.set()
        metrics.IMAGES.labels(request.spec.model, "cancelled").inc(len(request.spec.seeds))

    # -- batching ------------------------------------------------------------------------------

    async def _batch_loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _drop_expired(self) -> None:
        now = time.perf_counter()
        for request in [r for r in self._pending if r.deadline is not None and r.deadline <= now]:
            self._pending.remove(request)
            request.emit(FailedEvent("DEADLINE_EXCEEDED", "the deadline passed while the request was queued"))
        metrics.QUEUE_DEPTH.set(len(self._pending))

    def _compatible(self, head: Request, limit: int) -> tuple[list[Request], int]:
        batch, images = [head], len(head.spec.seeds)
        for request in self._pending[1:]:
            n = len(request.spec.seeds)
            if request.key == head.key and images + n <= limit:
                batch.append(request)
                images += n
        return batch, images

    async def _next_batch(self) -> list[Request]:
        while True:
            self._drop_expired()
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            head = self._pending[0]
            limit = min(self.max_batch, head.model.limits.max_batch)
            batch, images = self._compatible(head, limit)
            wait_s = head.enqueued_at + self.max_wait_s - time.perf_counter()
            if images >= limit or wait_s <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait_s)
        for request in batch:
            self._pending.remove(request)
        metrics.QUEUE_DEPTH.set(len(self._pending))
        return batch

    # -- running -------------------------------------------------------------------------------

    @staticmethod
    def _broadcast(batch: Sequence[Request], event: Event) -> None:
        for request in batch:
            request.emit(event)

    def _infer(self, model: Model, jobs: Sequence[ImageJob], batch: Sequence[Request],
               loop: asyncio.AbstractEventLoop) -> tuple[GenerateResult, np.ndarray | None]:
        def on_stage(stage: Stage, step: int, total: int) -> None:
            loop.call_soon_threadsafe(self._broadcast, batch, ProgressEvent(stage, step, total))

        result = model.generate(jobs, on_stage, lambda: all(r.cancelled for r in batch))
        scores = None
        if self.safety is not None:
            started = time.perf_counter()
            scores = self.safety.check(result.images)
            result.stage_s["safety"] = time.perf_counter() - started
        return result, scores

    async def _execute(self, batch: list[Request]) -> None:
        loop = asyncio.get_running_loop()
        model = batch[0].model
        jobs = [ImageJob(r.spec.prompt, r.spec.negative_prompt, r.spec.width, r.spec.height, r.spec.steps, seed)
                for r in batch for seed in r.spec.seeds]
        started = time.perf_counter()
        for request in batch:
            request.started_at = started
            metrics.STAGE_SECONDS.labels(model.name, "queue").observe(started - request.enqueued_at)
        metrics.BATCH_IMAGES.labels(model.name).observe(len(jobs))
        try:
            result, scores = await loop.run_in_executor(self._executor, self._infer, model, jobs, batch, loop)
        except RequestCancelled:
            log.info("batch_abandoned", model=model.name, images=len(jobs))
            return
        except Exception as exc:
            log.exception("batch_failed", model=model.name, images=len(jobs))
            for request in batch:
                request.emit(FailedEvent("INTERNAL", f"generation failed: {type(exc).__name__}: {str(exc)[:200]}"))
            metrics.IMAGES.labels(model.name, "failed").inc(len(jobs))
            return
        finally:
            self._slots.release()
        inference_s = time.perf_counter() - started
        for stage, seconds in result.stage_s.items():
            metrics.STAGE_SECONDS.labels(model.name, stage).observe(seconds)
        offset, deliveries = 0, []
        for request in batch:
            n = len(request.spec.seeds)
            deliveries.append(self._deliver(request, result.images[offset:offset + n],
                                            None if scores is None else scores[offset:offset + n], inference_s))
            offset += n
        await asyncio.gather(*deliveries)

    async def _encode(self, image: np.ndarray) -> tuple[bytes, float]:
        started = time.perf_counter()
        png = await asyncio.get_running_loop().run_in_executor(self._png, encode_png, image, self.png_compress_level)
        return png, time.perf_counter() - started

    async def _deliver(self, request: Request, images: np.ndarray, scores: np.ndarray | None,
                       inference_s: float) -> None:
        if request.cancelled:
            return
        spec, model = request.spec, request.model
        request.emit(ProgressEvent(Stage.POSTPROCESSING, spec.steps, spec.steps))
        flagged = (self.safety.flagged(scores) if self.safety is not None and scores is not None
                   else np.zeros(len(images), dtype=bool))
        encoded = await asyncio.gather(*(self._encode(im) for im, bad in zip(images, flagged, strict=True)
                                         if not bad))
        pngs = iter(encoded)
        queue_ms = (request.started_at - request.enqueued_at) * 1000
        encode_total_ms = 0.0
        for index, (seed, bad) in enumerate(zip(spec.seeds, flagged, strict=True)):
            png, encode_s = (b"", 0.0) if bad else next(pngs)
            metrics.STAGE_SECONDS.labels(model.name, "png").observe(encode_s)
            encode_total_ms += encode_s * 1000
            timings = Timings(queue_ms, inference_s * 1000, encode_s * 1000,
                              (time.perf_counter() - request.enqueued_at) * 1000)
            request.emit(ImageEvent(index, png, spec.width, spec.height, seed, model.name, timings,
                                    safety_checked=scores is not None, flagged=bool(bad),
                                    score=float(scores[index]) if scores is not None else 0.0))
        total_s = time.perf_counter() - request.enqueued_at
        n_flagged = int(flagged.sum())
        metrics.STAGE_SECONDS.labels(model.name, "total").observe(total_s)
        metrics.IMAGES.labels(model.name, "delivered").inc(len(images) - n_flagged)
        metrics.IMAGES.labels(model.name, "flagged").inc(n_flagged)
        metrics.image_rate.add(len(images))
        request.emit(DoneEvent(len(images), n_flagged,
                               Timings(queue_ms, inference_s * 1000, encode_total_ms, total_s * 1000),
                               model.provider))
