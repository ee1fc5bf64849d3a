"""The built-in CPPN: deterministic graph and latents, varied images, a true 512×512 image."""

from __future__ import annotations

import numpy as np

from inference.cppn import build_cppn_model, cppn_coords, cppn_latent, cppn_model_bytes
from inference.cppn_model import CppnModel
from inference.model import ImageJob, Stage


def test_graph_bytes_are_deterministic() -> None:
    assert build_cppn_model().SerializeToString() == cppn_model_bytes()


def test_latent_depends_on_prompt_seed_and_negative_prompt() -> None:
    base = cppn_latent("a red fox", 1)
    assert np.array_equal(base, cppn_latent("a red fox", 1))
    assert np.array_equal(base, cppn_latent("A  red FOX", 1))  # words, not spelling of whitespace/case
    for other in (cppn_latent("a blue fox", 1), cppn_latent("a red fox", 2), cppn_latent("a red fox", 1, "snow")):
        assert not np.allclose(base, other)
    assert np.isfinite(cppn_latent("🦊🦊", 3)).all()  # no words at all still gives a latent


def test_coords_are_square_pixels_centred_on_zero() -> None:
    coords = cppn_coords(128, 64)
    assert coords.shape == (1, 128 * 64, 3)
    x, y = coords[0, :, 0], coords[0, :, 1]
    assert abs(x.mean()) < 1e-6 and abs(y.mean()) < 1e-6
    assert np.isclose(x.max() - x.min(), 2 * (y.max() - y.min()), rtol=0.02)


def test_builtin_512_image_is_colourful_and_prompts_differ(cppn_model: CppnModel) -> None:
    stages: list[Stage] = []
    jobs = [ImageJob(prompt, "", 512, 512, 4, 7) for prompt in ("a red fox in the snow", "sunset over the ocean")]
    result = cppn_model.generate(jobs, lambda stage, step, total: stages.append(stage), lambda: False)
    assert result.images.shape == (2, 512, 512, 3) and result.images.dtype == np.uint8
    assert stages == [Stage.ENCODING, Stage.DENOISING]
    for image in result.images:
        assert image.std() > 20  # structure, not a flat fill
        assert len(np.unique(image.reshape(-1, 3)[::97], axis=0)) > 500  # many distinct colours
    mean_diff = np.abs(result.images[0].astype(int) - result.images[1].astype(int)).mean()
    assert mean_diff > 25  # visibly different


def test_more_steps_add_detail(cppn_model: CppnModel) -> None:
    def roughness(steps: int) -> float:
        image = cppn_model.generate([ImageJob("forest", "", 128, 128, steps, 3)], lambda *_: None,
                                    lambda: False).images[0].astype(float)
        return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())

    assert roughness(1) < roughness(4)
