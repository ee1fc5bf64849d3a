"""The gRPC InferenceService: validation, the Generate stream, ListModels."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from common.logging import get_logger
from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
from inference import metrics
from inference.engine import Engine, Request
from inference.errors import InvalidRequest, ModelNotReady, QueueFull
from inference.events import DoneEvent, Event, FailedEvent, GenerateSpec, ImageEvent, ProgressEvent, Timings
from inference.model import Model
from inference.registry import ModelRegistry

__all__ = ["InferenceServicer", "RequestLimits", "validate_request"]

log = get_logger(__name__)
MAX_REQUEST_ID_CHARS = 128
SEED_MODULUS = 1 << 64
_ERROR_CODES: dict[type[Exception], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    QueueFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@dataclass(frozen=True)
class RequestLimits:
    max_prompt_chars: int = 2000
    max_images: int = 4
    min_side_px: int = 64
    max_side_px: int = 1024


def _check_prompt(field: str, text: str, limit: int, *, required: bool) -> None:
    if required and not text.strip():
        raise InvalidRequest(f"{field} is empty; write what the image should show")
    if len(text) > limit:
        raise InvalidRequest(f"{field} is {len(text)} characters; at most {limit} are accepted")
    if "\x00" in text:
        raise InvalidRequest(f"{field} contains a NUL character")


def _check_side(field: str, value: int, model: Model, limits: RequestLimits) -> int:
    value = value or getattr(model.limits, f"default_{field}")
    multiple = model.limits.size_multiple
    if not limits.min_side_px <= value <= limits.max_side_px:
        raise InvalidRequest(f"{field} {value} is out of range; use {limits.min_side_px}..{limits.max_side_px} pixels")
    if value % multiple:
        raise InvalidRequest(f"{field} {value} is not a multiple of {multiple} (model {model.name})")
    return value


def validate_request(request: inference_pb2.GenerateRequest, model: Model, limits: RequestLimits) -> GenerateSpec:
    """Fill in defaults and check every bound; InvalidRequest says what is wrong."""
    _check_prompt("prompt", request.prompt, limits.max_prompt_chars, required=True)
    _check_prompt("negative_prompt", request.negative_prompt, limits.max_prompt_chars, required=False)
    if len(request.request_id) > MAX_REQUEST_ID_CHARS:
        raise InvalidRequest(f"request_id is longer than {MAX_REQUEST_ID_CHARS} characters")
    width = _check_side("width", request.width, model, limits)
    height = _check_side("height", request.height, model, limits)
    steps = request.steps or model.limits.default_steps
    if not 1 <= steps <= model.limits.max_steps:
        raise InvalidRequest(f"steps {steps} is out of range; model {model.name} takes 1..{model.limits.max_steps}")
    count = request.num_images or 1
    if count > limits.max_images:
        raise InvalidRequest(f"num_images {count} is more than {limits.max_images}")
    seed = request.seed if request.HasField("seed") else secrets.randbits(63)
    seeds = tuple((seed + i) % SEED_MODULUS for i in range(count))
    return GenerateSpec(request.request_id, model.name, request.prompt, request.negative_prompt,
                        width, height, steps, seeds)


def _timings(t: Timings) -> inference_pb2.Timings:
    return inference_pb2.Timings(queue_ms=t.queue_ms, inference_ms=t.inference_ms, encode_ms=t.encode_ms,
                                 total_ms=t.total_ms)


def _to_proto(event: Event) -> inference_pb2.GenerateEvent:
    if isinstance(event, ProgressEvent):
        return inference_pb2.GenerateEvent(progress=inference_pb2.Progress(
            stage=int(event.stage), step=event.step, total_steps=event.total_steps,  # type: ignore[arg-type]
            queue_position=event.queue_position))
    if isinstance(event, ImageEvent):
        return inference_pb2.GenerateEvent(image=inference_pb2.Image(
            index=event.index, png=event.png, width=event.width, height=event.height, seed=event.seed,
            model=event.model, timings=_timings(event.timings),
            safety=inference_pb2.SafetyVerdict(checked=event.safety_checked, flagged=event.flagged,
                                               score=event.score)))
    if isinstance(event, DoneEvent):
        return inference_pb2.GenerateEvent(done=inference_pb2.Done(
            images=event.images, flagged=event.flagged, timings=_timings(event.timings), provider=event.provider))
    raise TypeError(f"no wire form for {event!r}")


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, engine: Engine, registry: ModelRegistry, limits: RequestLimits) -> None:
        self.engine = engine
        self.registry = registry
        self.limits = limits

    async def _admit(self, request: inference_pb2.GenerateRequest,
                     context: grpc.aio.ServicerContext, outcome: dict[str, str]) -> Request:  # type: ignore[type-arg]
        """Validate and enqueue, or abort the call with the matching status code."""
        try:
            _check_prompt("prompt", request.prompt, self.limits.max_prompt_chars, required=True)
            model = self.registry.ready_model(request.model)
            outcome["model"] = model.name
            spec = validate_request(request, model, self.limits)
            return self.engine.submit(spec, model, context.time_remaining())
        except (InvalidRequest, ModelNotReady, QueueFull) as exc:
            code = _ERROR_CODES[type(exc)]
            outcome["code"] = code.name
            await context.abort(code, str(exc))
            raise  # abort raises; this is for the type checker

    async def Generate(
        self, request: inference_pb2.GenerateRequest, context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> AsyncIterator[inference_pb2.GenerateEvent]:
        started = time.perf_counter()
        outcome = {"code": "OK", "model": "unknown"}
        try:
            handle = await self._admit(request, context, outcome)
            metrics.IN_FLIGHT.inc()
            try:
                async for event in handle.events():
                    if isinstance(event, FailedEvent):
                        outcome["code"] = event.code
                        await context.abort(grpc.StatusCode[event.code], event.message)
                    yield _to_proto(event)
                    if isinstance(event, DoneEvent):
                        log.info("generated", request_id=handle.spec.request_id, model=handle.spec.model,
                                 images=event.images, flagged=event.flagged,
                                 total_ms=round((time.perf_counter() - started) * 1000, 1))
            finally:
                metrics.IN_FLIGHT.dec()
                self.engine.cancel(handle)
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            outcome["code"] = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
            raise
        finally:
            metrics.REQUESTS.labels(outcome["model"], outcome["code"]).inc()

    async def ListModels(
        self, request: inference_pb2.ListModelsRequest, context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> inference_pb2.ListModelsResponse:
        infos = []
        for entry in list(self.registry.entries.values()):
            model = entry.model
            info = inference_pb2.ModelInfo(name=entry.name, kind=entry.kind, ready=entry.ready, error=entry.error,
                                           is_default=entry.name == self.registry.default_model)
            if model is not None:
                lim = model.limits
                info.provider = model.provider
                info.description = model.description
                info.default_width, info.default_height = lim.default_width, lim.default_height
                info.default_steps, info.max_steps = lim.default_steps, lim.max_steps
                info.max_batch = min(lim.max_batch, self.engine.max_batch)
            infos.append(info)
        return inference_pb2.ListModelsResponse(models=infos)
