"""What the engine needs from a model: limits, a batch key, and ``generate`` for a batch of images."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = [
    "GenerateResult",
    "ImageJob",
    "Model",
    "ModelLimits",
    "Stage",
    "StageFn",
    "StopFn",
]


class Stage(enum.IntEnum):
    """Mirrors creatorpass.v1.Progress.Stage."""

    QUEUED = 1
    ENCODING = 2
    DENOISING = 3
    DECODING = 4
    POSTPROCESSING = 5


@dataclass(frozen=True)
class ImageJob:
    """One image to make. Requests with ``num_images`` > 1 become several jobs with consecutive seeds."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int


@dataclass(frozen=True)
class ModelLimits:
    default_width: int
    default_height: int
    default_steps: int
    max_steps: int
    max_batch: int
    size_multiple: int = 8


@dataclass
class GenerateResult:
    """``images``: uint8 [B, H, W, 3] in job order; ``stage_s``: seconds spent per stage."""

    images: np.ndarray
    stage_s: dict[str, float] = field(default_factory=dict)


# Called from the worker thread: (stage, step, total_steps).
StageFn = Callable[[Stage, int, int], None]
# Called between steps: True when nobody is waiting for the batch any more.
StopFn = Callable[[], bool]


class Model(Protocol):
    name: str
    kind: str
    description: str
    provider: str
    limits: ModelLimits

    def batch_key(self, width: int, height: int, steps: int) -> Hashable:
        """Jobs with equal keys may share a batch."""
        ...

    def generate(self, jobs: Sequence[ImageJob], on_stage: StageFn, should_stop: StopFn) -> GenerateResult:
        """Run one batch (blocking; called in a worker thread). Raises RequestCancelled when
        ``should_stop()`` turns true between steps."""
        ...
