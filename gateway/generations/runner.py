"""The job runner: a bounded number of generations in flight, each one task driving inference and
its ``Payment`` to exactly one outcome.

A slot is reserved before anything is written or held (no slot → 503, nothing charged). Each job:
inference stream → images stored → images recorded → ``wait_until_releasable`` → ``capture`` →
succeeded; or ``release(reason)`` → failed. Once inference has finished, the rest runs shielded
from cancellation, so a client that leaves cannot split a capture. ``accepted`` resolves when the
inference server took the request (its first event) — the HTTP handler waits for it briefly so a
full inference queue is answered 503 at once, with the row forgotten and the hold voided.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from common.logging import get_logger
from gateway.credits.ledger import HoldResolved
from gateway.generations.events import EventHub, GenerationEvent
from gateway.generations.images import ImageStore
from gateway.generations.inference import (
    Done,
    ImageOut,
    InferenceBusy,
    InferenceClient,
    InferenceFailed,
    InferenceRejected,
    InferenceRequest,
    Progress,
)
from gateway.generations.metrics import GENERATION_SECONDS, GENERATIONS, GENERATIONS_IN_FLIGHT, IMAGES
from gateway.generations.payment import Payment
from gateway.generations.repository import GenerationRow, ImageRow, Repository
from gateway.lib.db import Database
from gateway.lib.errors import GatewayError, ServiceUnavailable

__all__ = ["Job", "JobRunner", "now_us"]

log = get_logger("gateway.generations")
FULL_RETRY_AFTER_S = 2


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Job:
    row: GenerationRow
    payment: Payment
    accepted: asyncio.Future[None]
    task: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class _Failure(Exception):
    def __init__(self, code: str, message: str, *, forget: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.forget = code, message, forget


class JobRunner:
    def __init__(self, db: Database, inference: InferenceClient, store: ImageStore, hub: EventHub, *,
                 max_concurrent: int, on_finished: Callable[[GenerationRow], Awaitable[None]] | None = None) -> None:
        self.db = db
        self.inference = inference
        self.store = store
        self.hub = hub
        self.max_concurrent = max_concurrent
        self.jobs: dict[str, Job] = {}
        self._reserved = 0
        self.on_finished = on_finished

    def reserve(self) -> None:
        """Take a slot or answer 503 (before anything is written or held)."""
        if self._reserved >= self.max_concurrent:
            raise ServiceUnavailable("Too many generations in progress; retry shortly", code="generations_busy",
                                     retry_after_s=FULL_RETRY_AFTER_S)
        self._reserved += 1

    def unreserve(self) -> None:
        self._reserved = max(0, self._reserved - 1)

    def start(self, row: GenerationRow, payment: Payment) -> Job:
        """Run a reserved, authorized generation; its slot is freed when the job ends."""
        job = Job(row, payment, asyncio.get_running_loop().create_future())
        self.jobs[row.id] = job
        job.task = asyncio.create_task(self._run(job), name=f"generation:{row.id}")
        return job

    def cancel(self, generation_id: str) -> bool:
        job = self.jobs.get(generation_id)
        if job is None or job.task is None or job.task.done():
            return False
        job.task.cancel()
        return True

    async def stop(self) -> None:
        for generation_id in list(self.jobs):
            self.cancel(generation_id)
        for job in list(self.jobs.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(job.finished.wait(), 10)

    def _publish(self, topic: str, kind: str, **data: object) -> None:
        self.hub.publish(topic, GenerationEvent(kind, dict(data)))

    async def _run(self, job: Job) -> None:
        row, started = job.row, time.perf_counter()
        GENERATIONS_IN_FLIGHT.inc()
        outcome = "failed"
        try:
            delivered = await self._infer(job)
            finish = asyncio.ensure_future(self._finish(job, delivered))
            try:
                await asyncio.shield(finish)
            except asyncio.CancelledError:
                await finish  # the capture runs to its end; the client that left is charged only if delivered
            outcome = "succeeded"
        except _Failure as failure:
            await self._fail(job, failure)
            outcome = failure.code
        except asyncio.CancelledError:
            await self._fail(job, _Failure("cancelled", "The generation was cancelled; you were not charged"))
            outcome = "cancelled"
        except Exception:
            log.exception("generation_crashed", generation_id=row.id)
            await self._fail(job, _Failure("internal_error", "The generation failed; you were not charged"))
            outcome = "internal_error"
        finally:
            if not job.accepted.done():
                job.accepted.set_result(None)
            GENERATIONS_IN_FLIGHT.dec()
            GENERATIONS.labels(job.payment.kind, outcome).inc()
            GENERATION_SECONDS.labels("succeeded" if outcome == "succeeded" else "failed").observe(
                time.perf_counter() - started)
            self.jobs.pop(row.id, None)
            self.unreserve()
            job.finished.set()

    async def _infer(self, job: Job) -> list[ImageRow]:
        row, params = job.row, job.row.params
        request = InferenceRequest(
            request_id=row.id, prompt=row.prompt, negative_prompt=str(params.get("negative_prompt", "")),
            model=str(params.get("model", "")), width=int(params.get("width", 0)),
            height=int(params.get("height", 0)), steps=int(params.get("steps", 0)),
            seed=params.get("seed"), num_images=int(params.get("num_images", 1)),
        )
        delivered: list[ImageRow] = []
        flagged = 0
        running: asyncio.Future[None] | None = None
        try:
            async for event in self.inference.generate(request):
                if not job.accepted.done():
                    job.accepted.set_result(None)
                    # Not awaited: the status is informative and the next write queues behind it.
                    running = asyncio.ensure_future(self.db.write(
                        lambda conn: Repository.set_status(conn, row.id, "running", now_us()), durable=False))
                    self._publish(row.id, "running")
                if isinstance(event, Progress):
                    if event.stage == "queued":
                        self._publish(row.id, "queued", queue_position=event.queue_position)
                    else:
                        self._publish(row.id, "step", stage=event.stage, step=event.step,
                                      total_steps=event.total_steps)
                elif isinstance(event, ImageOut):
                    if event.flagged:
                        flagged += 1
                        IMAGES.labels("flagged").inc()
                        self._publish(row.id, "image", index=event.index, flagged=True)
                        continue
                    sha = await self.store.put(event.png)
                    IMAGES.labels("delivered").inc()
                    delivered.append(ImageRow(event.index, sha, event.width, event.height, event.seed, event.model))
                    self._publish(row.id, "image", index=event.index, flagged=False, width=event.width,
                                  height=event.height)
                elif isinstance(event, Done):
                    break
        except InferenceBusy as exc:
            raise _Failure("inference_busy", exc.detail, forget=not job.accepted.done()) from None
        except InferenceRejected as exc:
            raise _Failure("inference_rejected", exc.detail) from None
        except InferenceFailed as exc:
            raise _Failure(f"inference_{exc.reason}",
                           "The image generator failed; you were not charged") from None
        finally:
            if running is not None:
                await running
        if not delivered:
            if flagged:
                raise _Failure("safety_filtered", "Every image was withheld by the safety filter; you were not charged")
            raise _Failure("no_images", "The image generator returned no image; you were not charged")
        return delivered

    async def _finish(self, job: Job, delivered: list[ImageRow]) -> None:
        row = job.row
        # Not fsynced on its own: the post that follows is, and makes this earlier WAL frame durable too.
        await self.db.write(lambda conn: Repository.record_images(conn, row.id, delivered, now_us()), durable=False)
        try:
            await job.payment.wait_until_releasable()
            await job.payment.capture([image.index for image in delivered])
        except HoldResolved as exc:  # HoldExpired included: the hold timed out before delivery
            raise _Failure("hold_expired" if exc.code == "hold_expired" else "payment_resolved",
                           "The generation outlived its credit hold; you were not charged") from None
        except GatewayError as exc:
            raise _Failure(exc.code, exc.detail) from None
        # A lost 'succeeded' (power cut) is redone by the recovery: images recorded + hold posted.
        await self.db.write(lambda conn: Repository.set_status(conn, row.id, "succeeded", now_us()), durable=False)
        log.info("generation_succeeded", generation_id=row.id, images=len(delivered), payment=job.payment.kind)
        await self._announce(row.id, "done")

    async def _fail(self, job: Job, failure: _Failure) -> None:
        row = job.row
        try:
            await asyncio.shield(job.payment.release(failure.code))
        except Exception:
            # The hold stays pending and the sweeper voids it at its timeout: still not charged.
            log.exception("generation_release_failed", generation_id=row.id)
        if failure.forget:
            await self.db.write(lambda conn: Repository.delete_unstarted(conn, row.id), durable=False)
            if not job.accepted.done():
                job.accepted.set_exception(InferenceBusy())
            return
        await self.db.write(lambda conn: Repository.set_status(
            conn, row.id, "failed", now_us(), error_code=failure.code, error=failure.message), durable=False)
        log.info("generation_failed", generation_id=row.id, code=failure.code)
        await self._announce(row.id, "error")

    async def _announce(self, generation_id: str, kind: str) -> None:
        if self.on_finished is not None:
            current = await self.db.read(lambda conn: Repository.get(conn, generation_id))
            if current is not None:
                await self.on_finished(current)
        self._publish(generation_id, kind, generation_id=generation_id)
