"""The engine: a bounded queue, worker threads that form batches of compatible requests, PNG encoding.

Flow: ``submit`` appends a request to the queue (full → QueueFull). A worker thread, the moment it is
free, takes the oldest request plus every queued request with the same batch key (model, size,
steps) up to ``max_batch`` images, waiting at most ``max_wait_s`` after the oldest arrived for the
batch to fill; it runs the model (and the safety checker) and hands the images to the event loop,
which encodes PNGs in a separate pool while the worker already runs the next batch. Events go back
on each request's own queue. ``cancel`` (caller gone or deadline passed) takes a queued request out
at once, freeing its slot; a running batch stops between steps when all its callers are gone, else
their images are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
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
        self.workers = workers
        self.png_compress_level = png_compress_level
        self.safety = safety
        # The queue is shared with the worker threads, which form their own batches the moment they are
        # free: no hop through the event loop between one batch and the next.
        self._cond = threading.Condition()
        self._pending: list[Request] = []
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._png = ThreadPoolExecutor(png_workers, thread_name_prefix="png")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"inference-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    async def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            left, self._pending = self._pending, []
            self._cond.notify_all()
        metrics.QUEUE_DEPTH.set(0)
        for request in left:
            request.emit(FailedEvent("UNAVAILABLE", "the inference server is shutting down"))
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:  # a batch in flight finishes; its callers may already be gone
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
        if self._running:
            await asyncio.wait(self._running, timeout=max(0.1, deadline - time.monotonic()))
        self._png.shutdown(wait=False, cancel_futures=True)

    def submit(self, spec: GenerateSpec, model: Model, timeout_s: float | None = None) -> Request:
        deadline = time.perf_counter() + timeout_s if timeout_s is not None else None
        request = Request(spec, model, deadline)
        with self._cond:
            if self._stopping:
                raise QueueFull("the inference server is shutting down")
            if len(self._pending) >= self.queue_max:
                raise QueueFull(f"the queue is full ({self.queue_max} requests waiting); retry later")
            self._pending.append(request)
            position = len(self._pending)
            self._cond.notify_all()
        metrics.QUEUE_DEPTH.set(position)
        request.emit(ProgressEvent(Stage.QUEUED, 0, spec.steps, queue_position=position))
        return request

    def cancel(self, request: Request) -> None:
        """The caller went away: free its queue slot now, or make its running batch skip it."""
        if request.finished or request.cancelled:
            return
        request.cancelled = True
        with self._cond:
            if request in self._pending:
                self._pending.remove(request)
                metrics.QUEUE_DEPTH.set(len(self._pending))
                self._cond.notify_all()
        metrics.IMAGES.labels(request.spec.model, "cancelled").inc(len(request.spec.seeds))

    # -- worker threads ------------------------------------------------------------------------

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on the event loop (from a worker thread)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self._loop.call_soon_threadsafe(callback, *args)

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._run_batch(batch)

    def _compatible(self, head: Request, limit: int) -> tuple[list[Request], int]:
        batch, images = [head], len(head.spec.seeds)
        for request in self._pending[1:]:
            n = len(request.spec.seeds)
            if request.key == head.key and images + n <= limit:
                batch.append(request)
                images += n
        return batch, images

    def _drop_expired(self) -> None:
        now = time.perf_counter()
        expired = [r for r in self._pending if r.deadline is not None and r.deadline <= now]
        for request in expired:
            self._pending.remove(request)
            self._post(request.emit, FailedEvent("DEADLINE_EXCEEDED", "the deadline passed while queued"))

    def _take_batch(self) -> list[Request] | None:
        """The oldest request and every compatible one behind it, up to max_batch images, waiting at
        most max_wait_s after the oldest arrived for the batch to fill. None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                self._drop_expired()
                if not self._pending:
                    self._cond.wait()
                    continue
                head = self._pending[0]
                limit = min(self.max_batch, head.model.limits.max_batch)
                batch, images = self._compatible(head, limit)
                wait_s = head.enqueued_at + self.max_wait_s - time.perf_counter()
                if images >= limit or wait_s <= 0:
                    break
                self._cond.wait(wait_s)
            for request in batch:
                self._pending.remove(request)
            metrics.QUEUE_DEPTH.set(len(self._pending))
        return batch

    def _broadcast(self, batch: Sequence[Request], event: Event) -> None:
        for request in batch:
            request.emit(event)

    def _run_batch(self, batch: list[Request]) -> None:
        model = batch[0].model
        jobs = [ImageJob(r.spec.prompt, r.spec.negative_prompt, r.spec.width, r.spec.height, r.spec.steps, seed)
                for r in batch for seed in r.spec.seeds]
        metrics.BATCH_IMAGES.labels(model.name).observe(len(jobs))
        started = time.perf_counter()
        try:
            result = model.generate(jobs, lambda stage, step, total: self._post(
                self._broadcast, batch, ProgressEvent(stage, step, total)), lambda: all(r.cancelled for r in batch))
            scores = None
            if self.safety is not None:
                checked = time.perf_counter()
                scores = self.safety.check(result.images)
                result.stage_s["safety"] = time.perf_counter() - checked
        except RequestCancelled:
            log.info("batch_abandoned", model=model.name, images=len(jobs))
            return
        except Exception as exc:
            log.exception("batch_failed", model=model.name, images=len(jobs))
            metrics.IMAGES.labels(model.name, "failed").inc(len(jobs))
            failure = FailedEvent("INTERNAL", f"generation failed: {type(exc).__name__}: {str(exc)[:200]}")
            self._post(self._broadcast, batch, failure)
            return
        inference_s = time.perf_counter() - started
        for request in batch:
            request.started_at = started
            metrics.STAGE_SECONDS.labels(model.name, "queue").observe(started - request.enqueued_at)
        for stage, seconds in result.stage_s.items():
            metrics.STAGE_SECONDS.labels(model.name, stage).observe(seconds)
        self._post(self._deliver_batch, batch, result, scores, inference_s)

    # -- delivery (event loop) -----------------------------------------------------------------

    def _deliver_batch(self, batch: list[Request], result: GenerateResult, scores: np.ndarray | None,
                       inference_s: float) -> None:
        offset = 0
        for request in batch:
            n = len(request.spec.seeds)
            task = asyncio.ensure_future(self._deliver(request, result.images[offset:offset + n],
                                                       None if scores is None else scores[offset:offset + n],
                                                       inference_s))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            offset += n

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
