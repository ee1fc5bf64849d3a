"""The SD-Turbo sampler in numpy: Euler discrete over "trailing" timesteps, guidance-free.

Matches diffusers' ``EulerDiscreteScheduler`` configured as stabilityai/sd-turbo ships it
(scaled-linear betas 0.00085..0.012 over 1000 training steps, epsilon prediction,
``timestep_spacing="trailing"``): with one step it jumps straight from pure noise to the denoised
estimate, which is what the model was distilled for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EulerDiscreteScheduler", "Schedule"]


@dataclass(frozen=True)
class Schedule:
    timesteps: np.ndarray  # int64 [steps], descending
    sigmas: np.ndarray     # float64 [steps + 1], the last one 0

    @property
    def init_sigma(self) -> float:
        return float(self.sigmas[0])


@dataclass(frozen=True)
class EulerDiscreteScheduler:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012

    def schedule(self, steps: int) -> Schedule:
        if not 1 <= steps <= self.num_train_timesteps:
            raise ValueError(f"steps must be between 1 and {self.num_train_timesteps}; got {steps}")
        n = self.num_train_timesteps
        betas = np.linspace(self.beta_start**0.5, self.beta_end**0.5, n, dtype=np.float64) ** 2
        alphas_cumprod = np.cumprod(1.0 - betas)
        train_sigmas = np.sqrt((1.0 - alphas_cumprod) / alphas_cumprod)
        timesteps = (np.round(np.arange(n, 0, -n / steps)) - 1).astype(np.int64)
        sigmas = np.interp(timesteps.astype(np.float64), np.arange(n, dtype=np.float64), train_sigmas)
        return Schedule(timesteps, np.append(sigmas, 0.0))

    @staticmethod
    def scale_input(latents: np.ndarray, sigma: float) -> np.ndarray:
        scaled: np.ndarray = (latents / np.sqrt(sigma * sigma + 1.0)).astype(np.float32)
        return scaled

    @staticmethod
    def step(latents: np.ndarray, noise_pred: np.ndarray, sigma: float, sigma_next: float) -> np.ndarray:
        # x0 = x - σ·ε; derivative (x - x0)/σ = ε; Euler: x + ε·(σ_next - σ).
        stepped: np.ndarray = latents + noise_pred.astype(np.float32) * np.float32(sigma_next - sigma)
        return stepped.astype(np.float32)
