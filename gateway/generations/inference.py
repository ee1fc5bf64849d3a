"""The inference dependency behind a small interface: ``InferenceClient`` and its gRPC implementation.

``generate(request)`` is an async iterator of ``Progress``, ``ImageOut`` (one per requested image;
``flagged`` ones carry no PNG and are never charged) and finally ``Done``. Failures are raised as
``InferenceBusy`` (the queue is full: 503 with Retry-After), ``InferenceRejected`` (the request is
invalid for the model: 422) or ``InferenceFailed`` (unavailable, deadline, internal: the generation
fails and nothing is charged).

``GrpcInferenceClient`` spreads generations over several inference servers (comma-separated targets,
and/or ``dns:///name:port`` names resolved to several addresses and balanced by gRPC's ``round_robin``
with client-side health checking). It is health-aware: each target's grpc.health status is polled, and
a target that is NOT_SERVING (its model not ready) or unreachable, or that just answered
RESOURCE_EXHAUSTED (its queue is full), gets no new work until it recovers. A call refused with a full
queue is tried on another target; a server that dies mid-generation before any image came back is
replaced by another within the generation's deadline (the runner sees one stream); within a ``dns:///``
pool "another" is the next address (a full or dead address does not bench the whole pool). Once an image has
come back the stream cannot be resumed elsewhere (another server would draw other images), so the
generation fails — and is not charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpcutil import DEFAULT_MAX_MESSAGE_BYTES
from common.logging import get_logger
from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
from gateway.lib.errors import ServiceUnavailable, Unprocessable
from gateway.server.container import HealthResult

__all__ = [
    "INFERENCE_SERVICE",
    "Done",
    "GrpcInferenceClient",
    "ImageOut",
    "InferenceBusy",
    "InferenceClient",
    "InferenceEvent",
    "InferenceFailed",
    "InferenceRejected",
    "InferenceRequest",
    "Progress",
]

INFERENCE_SERVICE = "creatorpass.v1.InferenceService"
BUSY_RETRY_AFTER_S = 2
HEALTH_TIMEOUT_S = 2.0
HEALTH_INTERVAL_S = 1.0  # how often each target's health is polled (a dead server is seen within ~1 s)
BUSY_COOLDOWN_S = 1.0  # a target that answered "queue full" gets no new work for this long
MAX_ATTEMPTS = 4  # calls per generation (the first, then retries on other targets)
# On a dns:/// pool gRPC's round robin picks the address, and other generations' calls share the rotation, so
# a retry can land on the same full address again: more tries, each after a short random pause.
POOL_ATTEMPTS = 8
DNS_MIN_RERESOLVE_MS = 5000
POOL_RETRY_PAUSE_S = (0.01, 0.05)
log = get_logger("gateway.generations.inference")


class InferenceBusy(ServiceUnavailable):
    code = "inference_busy"

    def __init__(self, detail: str = "The image generator is at capacity; retry shortly") -> None:
        super().__init__(detail, retry_after_s=BUSY_RETRY_AFTER_S)


class InferenceRejected(Unprocessable):
    code = "inference_rejected"


class InferenceFailed(Exception):
    """The generation could not run (``reason``: unavailable, deadline, cancelled, internal, protocol)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class InferenceRequest:
    request_id: str
    prompt: str
    negative_prompt: str = ""
    model: str = ""
    width: int = 0
    height: int = 0
    steps: int = 0
    seed: int | None = None
    num_images: int = 1


@dataclass(frozen=True)
class Progress:
    stage: str  # queued, encoding, denoising, decoding, postprocessing
    step: int = 0
    total_steps: int = 0
    queue_position: int = 0


@dataclass(frozen=True)
class ImageOut:
    index: int
    png: bytes
    width: int
    height: int
    seed: int
    model: str
    flagged: bool = False


@dataclass(frozen=True)
class Done:
    images: int
    flagged: int
    provider: str = ""


InferenceEvent = Progress | ImageOut | Done


class InferenceClient(Protocol):
    def generate(self, request: InferenceRequest) -> AsyncIterator[InferenceEvent]: ...

    async def health(self) -> HealthResult: ...

    async def close(self) -> None: ...


_STAGES = {
    inference_pb2.Progress.STAGE_QUEUED: "queued",
    inference_pb2.Progress.STAGE_ENCODING: "encoding",
    inference_pb2.Progress.STAGE_DENOISING: "denoising",
    inference_pb2.Progress.STAGE_DECODING: "decoding",
    inference_pb2.Progress.STAGE_POSTPROCESSING: "postprocessing",
}


def _event(message: inference_pb2.GenerateEvent) -> InferenceEvent:
    which = message.WhichOneof("event")
    if which == "progress":
        p = message.progress
        return Progress(_STAGES.get(p.stage, "running"), p.step, p.total_steps, p.queue_position)
    if which == "image":
        i = message.image
        return ImageOut(i.index, bytes(i.png), i.width, i.height, i.seed, i.model,
                        flagged=i.safety.flagged or not i.png)
    if which == "done":
        return Done(message.done.images, message.done.flagged, message.done.provider)
    raise InferenceFailed("protocol", "inference sent an empty event")


def _failure(exc: grpc.aio.AioRpcError) -> Exception:
    code, detail = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return InferenceBusy()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InferenceRejected(f"The image generator refused the request: {detail}"[:500])
    reasons = {grpc.StatusCode.UNAVAILABLE: "unavailable", grpc.StatusCode.DEADLINE_EXCEEDED: "deadline",
               grpc.StatusCode.CANCELLED: "cancelled"}
    return InferenceFailed(reasons.get(code, "internal"), f"inference {code.name.lower()}: {detail}"[:500])


@dataclass
class _Target:
    """One configured target: a channel, its last health, and until when it is known to be full."""

    name: str
    channel: grpc.aio.Channel
    stub: Any
    serving: bool = True  # optimistic until the first health answer
    busy_until: float = 0.0
    status: str = "UNKNOWN"
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def balanced(self) -> bool:
        """A ``dns:///`` name: gRPC balances (and health-checks) its addresses itself."""
        return self.name.startswith("dns:")


def _channel(target: str, service: str) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
    ]
    if target.startswith("dns:"):
        options.append(("grpc.service_config", json.dumps({
            "loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": service}})))
        # Re-resolved when a connection closes (the servers age theirs out): new addresses are found within
        # seconds of that, not after gRPC's default 30 s floor.
        options.append(("grpc.dns_min_time_between_resolutions_ms", DNS_MIN_RERESOLVE_MS))
    return grpc.aio.insecure_channel(target, options=options)


class GrpcInferenceClient:
    """``creatorpass.v1.InferenceService`` over many servers: health-aware round robin, retried elsewhere."""

    def __init__(self, targets: str, *, timeout_s: float, model: str = "") -> None:
        names = [t.strip() for t in targets.split(",") if t.strip()]
        if not names:
            raise ValueError("GATEWAY_INFERENCE_TARGET names no target")
        self.targets = names
        self.timeout_s = timeout_s
        self.model = model
        self.service = f"{INFERENCE_SERVICE}/{model}" if model else INFERENCE_SERVICE
        channels = [_channel(t, self.service) for t in names]
        self._targets = [_Target(n, c, inference_pb2_grpc.InferenceServiceStub(c)) for n, c in zip(names, channels,
                                                                                                   strict=True)]
        self._turn = 0

    # -- health ---------------------------------------------------------------------------------

    async def _check(self, target: _Target) -> None:
        stub = health_pb2_grpc.HealthStub(target.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=self.service), timeout=HEALTH_TIMEOUT_S)
            target.status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            target.status = exc.code().name
        serving = target.status == "SERVING"
        if serving != target.serving:
            log.info("inference_target_health", target=target.name, status=target.status)
        target.serving = serving

    async def _watch(self, target: _Target) -> None:
        while True:
            await self._check(target)
            await asyncio.sleep(HEALTH_INTERVAL_S)

    def _ensure_watchers(self) -> None:
        for target in self._targets:
            if target.watcher is None or target.watcher.done():
                target.watcher = asyncio.get_running_loop().create_task(self._watch(target),
                                                                        name=f"inference-health:{target.name}")

    # -- picking a target -----------------------------------------------------------------------

    def _pick(self, tried: set[str]) -> _Target:
        """The next target in turn that serves, is not full and was not tried for this generation; else
        InferenceBusy when the others are full, InferenceFailed when none can take it."""
        now = time.monotonic()
        fresh = [t for t in self._targets if t.name not in tried or t.balanced]
        ready = [t for t in fresh if t.serving and t.busy_until <= now]
        if not ready:
            # Full is "busy" (503 + Retry-After), also when the only full servers were tried already.
            if any(t.busy_until > now for t in fresh) or (not fresh and any(t.busy_until > now for t in self._targets)):
                raise InferenceBusy()
            ready = [t for t in fresh if t.busy_until <= now]  # health may lag: try one anyway
        if not ready:
            raise InferenceFailed("unavailable", "no inference server can take the generation")
        self._turn = (self._turn + 1) % len(ready)
        return ready[self._turn]

    # -- generating -----------------------------------------------------------------------------

    def _message(self, request: InferenceRequest) -> inference_pb2.GenerateRequest:
        message = inference_pb2.GenerateRequest(
            request_id=request.request_id, model=request.model or self.model, prompt=request.prompt,
            negative_prompt=request.negative_prompt, width=request.width, height=request.height,
            steps=request.steps, num_images=request.num_images,
        )
        if request.seed is not None:
            message.seed = request.seed
        return message

    async def generate(self, request: InferenceRequest) -> AsyncIterator[InferenceEvent]:
        self._ensure_watchers()
        message = self._message(request)
        deadline = time.monotonic() + self.timeout_s
        tried: set[str] = set()
        images = 0
        for attempt in range(POOL_ATTEMPTS):
            target = self._pick(tried)
            limit = POOL_ATTEMPTS if target.balanced else MAX_ATTEMPTS
            tried.add(target.name)
            log.info("inference_call", target=target.name, request_id=request.request_id, attempt=attempt + 1)
            call = target.stub.Generate(message, timeout=max(0.001, deadline - time.monotonic()))
            try:
                async for event in call:
                    out = _event(event)
                    images += isinstance(out, ImageOut)
                    yield out
                return
            except grpc.aio.AioRpcError as exc:
                failure = _failure(exc)
                # One address of a dns:/// pool answered: the pool is not full or dead because of it (gRPC's
                # health checks drop a dead address; the retry's round robin goes to the next one).
                if isinstance(failure, InferenceBusy) and not target.balanced:
                    target.busy_until = time.monotonic() + BUSY_COOLDOWN_S
                elif exc.code() == grpc.StatusCode.UNAVAILABLE and not target.balanced:
                    target.serving = False  # until its health says otherwise
                retry = (isinstance(failure, InferenceBusy) or exc.code() == grpc.StatusCode.UNAVAILABLE) \
                    and images == 0 and time.monotonic() < deadline and attempt + 1 < limit
                if not retry:
                    raise failure from None
                log.warning("inference_retried_elsewhere", target=target.name, request_id=request.request_id,
                            code=exc.code().name)
            finally:
                call.cancel()  # a no-op once finished; frees the server's queue slot when we stop early
            if target.balanced:
                await asyncio.sleep(random.uniform(*POOL_RETRY_PAUSE_S))
        # (unreachable: the last attempt raises; the next _pick raises when no other target can take it)

    async def health(self) -> HealthResult:
        await asyncio.gather(*(self._check(t) for t in self._targets))
        states = [(t.name, t.status) for t in self._targets]
        serving = [t for t, s in states if s == "SERVING"]
        detail = ", ".join(f"{t}: {s}" for t, s in states)
        return HealthResult(bool(serving), detail, degraded=0 < len(serving) < len(states))

    async def close(self) -> None:
        for target in self._targets:
            if target.watcher is not None:
                target.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await target.watcher
            await target.channel.close(grace=None)
