"""The numpy Euler scheduler matches diffusers' trailing-timestep schedule for SD-Turbo."""

from __future__ import annotations

import numpy as np
import pytest

from inference.scheduler import EulerDiscreteScheduler


@pytest.mark.parametrize(("steps", "timesteps"), [
    (1, [999]), (2, [999, 499]), (3, [999, 666, 332]), (4, [999, 749, 499, 249]),
])
def test_trailing_timesteps(steps: int, timesteps: list[int]) -> None:
    schedule = EulerDiscreteScheduler().schedule(steps)
    assert schedule.timesteps.tolist() == timesteps
    assert len(schedule.sigmas) == steps + 1 and schedule.sigmas[-1] == 0
    assert np.all(np.diff(schedule.sigmas) < 0)


def test_sigma_max_is_sd_s() -> None:
    assert EulerDiscreteScheduler().schedule(1).init_sigma == pytest.approx(14.6146, abs=1e-3)


def test_one_step_with_the_true_noise_recovers_the_clean_latent() -> None:
    scheduler = EulerDiscreteScheduler()
    schedule = scheduler.schedule(1)
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    noise = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    noisy = clean + noise * np.float32(schedule.init_sigma)
    out = scheduler.step(noisy, noise, schedule.init_sigma, 0.0)
    assert np.allclose(out, clean, atol=1e-4)
    assert scheduler.scale_input(noisy, 0.0).dtype == np.float32


def test_steps_out_of_range() -> None:
    with pytest.raises(ValueError, match="steps"):
        EulerDiscreteScheduler().schedule(0)
