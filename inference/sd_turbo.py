"""A Stable-Diffusion-Turbo-style pipeline over three ONNX sessions, with the scheduler in numpy.

text_encoder: input_ids int32/int64 [B, L] → last_hidden_state [B, L, D]
unet:         sample [B, C, h, w], timestep float/int [1] or [B], encoder_hidden_states [B, L, D] → [B, C, h, w]
vae_decoder:  latent_sample [B, C, h, w] → sample [B, 3, h·s, w·s] in -1..1
Guidance-free (SD-Turbo is distilled for guidance scale 0), so the negative prompt is not used.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from inference.errors import ModelLoadError, RequestCancelled
from inference.model import GenerateResult, ImageJob, ModelLimits, Stage, StageFn, StopFn
from inference.runtime import RuntimeConfig, create_session
from inference.scheduler import EulerDiscreteScheduler
from inference.sd_layout import SdLayout, load_tokenizer

__all__ = ["SdTurboModel"]

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


@dataclass(frozen=True)
class _Input:
    name: str
    dtype: type
    shape: tuple[int | str | None, ...]


def _inputs(session: ort.InferenceSession, label: str, required: Sequence[str]) -> dict[str, _Input]:
    found = {}
    for arg in session.get_inputs():
        if arg.type not in _NUMPY_TYPES:
            raise ModelLoadError(f"{label}: input {arg.name} has unsupported type {arg.type}")
        found[arg.name] = _Input(arg.name, _NUMPY_TYPES[arg.type], tuple(arg.shape))
    missing = [r for r in required if r not in found]
    if missing:
        raise ModelLoadError(f"{label}: expected inputs {', '.join(required)}; has {', '.join(found) or 'none'}")
    return found


def _fixed(dim: int | str | None) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class SdTurboModel:
    kind = "sd-turbo"

    def __init__(self, root: Path, config: RuntimeConfig, *, max_batch: int = 8) -> None:
        self.layout = layout = SdLayout.resolve(root)
        meta = layout.meta
        self.name = meta.name
        self.description = meta.description
        self.scheduler = EulerDiscreteScheduler()
        self.text_encoder, _ = create_session(layout.text_encoder, config, label=f"{self.name}/text_encoder")
        self.unet, self.provider = create_session(layout.unet, config, label=f"{self.name}/unet")
        self.vae, _ = create_session(layout.vae_decoder, config, label=f"{self.name}/vae_decoder")
        self._ids = _inputs(self.text_encoder, f"{self.name}/text_encoder", ["input_ids"])["input_ids"]
        unet_inputs = _inputs(self.unet, f"{self.name}/unet", ["sample", "timestep", "encoder_hidden_states"])
        self._sample = unet_inputs["sample"]
        self._timestep = unet_inputs["timestep"]
        self._context = unet_inputs["encoder_hidden_states"]
        self._latent = _inputs(self.vae, f"{self.name}/vae_decoder", ["latent_sample"])["latent_sample"]
        self.seq_len = _fixed(self._ids.shape[1] if len(self._ids.shape) > 1 else None) or meta.max_length
        self.tokenizer = load_tokenizer(layout, self.seq_len)
        self.channels = _fixed(self._sample.shape[1] if len(self._sample.shape) > 1 else None) or 4
        self.limits = ModelLimits(default_width=meta.default_width, default_height=meta.default_height,
                                  default_steps=meta.default_steps, max_steps=meta.max_steps,
                                  max_batch=max_batch, size_multiple=meta.size_multiple)
        self.warm_up()

    def batch_key(self, width: int, height: int, steps: int) -> Hashable:
        return (width, height, steps)

    def warm_up(self) -> None:
        """Run the smallest image once: a graph that loads but cannot run fails readiness here."""
        side = self.limits.size_multiple
        job = ImageJob("warm up", "", side, side, 1, 0)
        try:
            self.generate([job], lambda *_: None, lambda: False)
        except Exception as exc:
            raise ModelLoadError(f"{self.name}: test generation failed: {str(exc)[:300]}") from None

    def _encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        ids: np.ndarray = np.array([e.ids for e in self.tokenizer.encode_batch(list(prompts))], dtype=self._ids.dtype)
        outputs = [o.name for o in self.text_encoder.get_outputs()]
        name = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        return np.asarray(self.text_encoder.run([name], {"input_ids": ids})[0]).astype(self._context.dtype)

    def _timestep_feed(self, t: int, batch: int) -> np.ndarray:
        rank1_of_one = len(self._timestep.shape) == 1 and self._timestep.shape[0] == 1
        shape: tuple[int, ...] = () if not self._timestep.shape else ((1,) if rank1_of_one else (batch,))
        return np.full(shape, t, dtype=self._timestep.dtype)

    def initial_latents(self, jobs: Sequence[ImageJob], init_sigma: float) -> np.ndarray:
        """Per-image noise from each job's own seed, so a batch gives the same image as a lone run."""
        scale = self.layout.meta.vae_scale
        shape = (self.channels, jobs[0].height // scale, jobs[0].width // scale)
        noise = [np.random.default_rng(j.seed).standard_normal(shape, dtype=np.float32) for j in jobs]
        return np.stack(noise) * np.float32(init_sigma)

    def generate(self, jobs: Sequence[ImageJob], on_stage: StageFn, should_stop: StopFn) -> GenerateResult:
        steps = jobs[0].steps
        stage_s: dict[str, float] = {}
        on_stage(Stage.ENCODING, 0, steps)
        started = time.perf_counter()
        context = self._encode_text([j.prompt for j in jobs])
        schedule = self.scheduler.schedule(steps)
        latents = self.initial_latents(jobs, schedule.init_sigma)
        stage_s["encode"] = time.perf_counter() - started
        started = time.perf_counter()
        for i, t in enumerate(schedule.timesteps):
            if should_stop():
                raise RequestCancelled("every caller of the batch went away")
            sigma, sigma_next = float(schedule.sigmas[i]), float(schedule.sigmas[i + 1])
            feed = {
                "sample": self.scheduler.scale_input(latents, sigma).astype(self._sample.dtype),
                "timestep": self._timestep_feed(int(t), len(jobs)),
                "encoder_hidden_states": context,
            }
            noise_pred = np.asarray(self.unet.run(None, feed)[0])
            latents = self.scheduler.step(latents, noise_pred, sigma, sigma_next)
            on_stage(Stage.DENOISING, i + 1, steps)
        stage_s["denoise"] = time.perf_counter() - started
        if should_stop():
            raise RequestCancelled("every caller of the batch went away")
        on_stage(Stage.DECODING, steps, steps)
        started = time.perf_counter()
        scaled: np.ndarray = (latents / np.float32(self.layout.meta.scaling_factor)).astype(self._latent.dtype)
        decoded = np.asarray(self.vae.run(None, {"latent_sample": scaled})[0], dtype=np.float32)
        images = np.clip(decoded * 127.5 + 128.0, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        stage_s["decode"] = time.perf_counter() - started
        expected = (len(jobs), jobs[0].height, jobs[0].width, 3)
        if images.shape != expected:
            raise ModelLoadError(f"{self.name}: VAE decoder returned {images.shape}; expected {expected}")
        return GenerateResult(np.ascontiguousarray(images), stage_s)
