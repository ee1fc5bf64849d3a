"""The built-in model: the CPPN graph from :mod:`inference.cppn` behind the engine's Model interface."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence

import numpy as np

from inference.cppn import CPPN_MAX_DETAIL, cppn_coords, cppn_latent, cppn_model_bytes
from inference.errors import RequestCancelled
from inference.model import GenerateResult, ImageJob, ModelLimits, Stage, StageFn, StopFn
from inference.runtime import RuntimeConfig, create_session

__all__ = ["CPPN_NAME", "CppnModel"]

CPPN_NAME = "cppn"
# Pixels per session.run: bounds the activations ([pixels, hidden] floats per layer) to tens of MB.
PIXEL_BUDGET = 1 << 20


class CppnModel:
    kind = "cppn"
    description = "Built-in abstract generator (CPPN + cosine palette); steps add detail octaves"

    def __init__(self, config: RuntimeConfig, *, name: str = CPPN_NAME, max_batch: int = 8) -> None:
        self.name = name
        self.session, self.provider = create_session(cppn_model_bytes(), config, label=name)
        self.limits = ModelLimits(default_width=512, default_height=512, default_steps=CPPN_MAX_DETAIL,
                                  max_steps=CPPN_MAX_DETAIL, max_batch=max_batch, size_multiple=8)

    def batch_key(self, width: int, height: int, steps: int) -> Hashable:
        return (width, height, steps)

    def inputs(self, jobs: Sequence[ImageJob]) -> dict[str, np.ndarray]:
        """The session inputs for a batch of same-size jobs (also used by the benchmark's bare loop)."""
        first = jobs[0]
        return {
            "coords": cppn_coords(first.width, first.height),
            "latent": np.stack([cppn_latent(j.prompt, j.seed, j.negative_prompt) for j in jobs]),
            "detail": np.array([[float(j.steps)] for j in jobs], dtype=np.float32),
        }

    def generate(self, jobs: Sequence[ImageJob], on_stage: StageFn, should_stop: StopFn) -> GenerateResult:
        first = jobs[0]
        steps = first.steps
        on_stage(Stage.ENCODING, 0, steps)
        started = time.perf_counter()
        feed = self.inputs(jobs)
        encode_s = time.perf_counter() - started
        per_run = max(1, PIXEL_BUDGET // (first.width * first.height))
        chunks = []
        started = time.perf_counter()
        for lo in range(0, len(jobs), per_run):
            if should_stop():
                raise RequestCancelled("every caller of the batch went away")
            part = {"coords": feed["coords"], "latent": feed["latent"][lo:lo + per_run],
                    "detail": feed["detail"][lo:lo + per_run]}
            chunks.append(self.session.run(["image"], part)[0])
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        on_stage(Stage.DENOISING, steps, steps)
        images = out.reshape(len(jobs), first.height, first.width, 3)
        return GenerateResult(images, {"encode": encode_s, "denoise": time.perf_counter() - started})
