"""The inference dependency behind a small interface: ``InferenceClient`` and its gRPC implementation.

``generate(request)`` is an async iterator of ``Progress``, ``ImageOut`` (one per requested image;
``flagged`` ones carry no PNG and are never charged) and finally ``Done``. Failures are raised as
``InferenceBusy`` (the queue is full: 503 with Retry-After), ``InferenceRejected`` (the request is
invalid for the model: 422) or ``InferenceFailed`` (unavailable, deadline, internal: the generation
fails and nothing is charged).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpcutil import open_channel
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


class GrpcInferenceClient:
    """``creatorpass.v1.InferenceService`` over one channel per target (round robin)."""

    def __init__(self, targets: str, *, timeout_s: float, model: str = "") -> None:
        names = [t.strip() for t in targets.split(",") if t.strip()]
        if not names:
            raise ValueError("GATEWAY_INFERENCE_TARGET names no target")
        self.targets = names
        self.timeout_s = timeout_s
        self.model = model
        self._channels = [open_channel(t) for t in names]
        self._stubs = [inference_pb2_grpc.InferenceServiceStub(c) for c in self._channels]
        self._next = itertools.cycle(range(len(names)))

    async def generate(self, request: InferenceRequest) -> AsyncIterator[InferenceEvent]:
        message = inference_pb2.GenerateRequest(
            request_id=request.request_id, model=request.model or self.model, prompt=request.prompt,
            negative_prompt=request.negative_prompt, width=request.width, height=request.height,
            steps=request.steps, num_images=request.num_images,
        )
        if request.seed is not None:
            message.seed = request.seed
        call = self._stubs[next(self._next)].Generate(message, timeout=self.timeout_s)
        try:
            async for event in call:
                yield _event(event)
        except grpc.aio.AioRpcError as exc:
            raise _failure(exc) from None
        finally:
            call.cancel()  # a no-op once finished; frees the server's queue slot when we stop early

    async def health(self) -> HealthResult:
        states = []
        for target, channel in zip(self.targets, self._channels, strict=True):
            stub = health_pb2_grpc.HealthStub(channel)
            service = f"{INFERENCE_SERVICE}/{self.model}" if self.model else INFERENCE_SERVICE
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=HEALTH_TIMEOUT_S)
                states.append((target, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)))
            except grpc.aio.AioRpcError as exc:
                states.append((target, exc.code().name))
        serving = [t for t, s in states if s == "SERVING"]
        detail = ", ".join(f"{t}: {s}" for t, s in states)
        return HealthResult(bool(serving), detail, degraded=0 < len(serving) < len(states))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(grace=None)
