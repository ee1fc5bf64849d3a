"""A validated request and the events the engine streams back for it (plain data, no protobuf)."""

from __future__ import annotations

from dataclasses import dataclass

from inference.model import Stage

__all__ = [
    "DoneEvent",
    "Event",
    "FailedEvent",
    "GenerateSpec",
    "ImageEvent",
    "ProgressEvent",
    "Timings",
]


@dataclass(frozen=True)
class GenerateSpec:
    """A request after validation: defaults filled in, one seed per image."""

    request_id: str
    model: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    step: int = 0
    total_steps: int = 0
    queue_position: int = 0


@dataclass(frozen=True)
class Timings:
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class ImageEvent:
    index: int
    png: bytes  # empty when flagged
    width: int
    height: int
    seed: int
    model: str
    timings: Timings
    safety_checked: bool
    flagged: bool
    score: float


@dataclass(frozen=True)
class DoneEvent:
    images: int
    flagged: int
    timings: Timings
    provider: str


@dataclass(frozen=True)
class FailedEvent:
    """The request ended without its images. ``code`` is a grpc.StatusCode name."""

    code: str
    message: str


Event = ProgressEvent | ImageEvent | DoneEvent | FailedEvent
