"""The SD-Turbo pipeline on tiny random graphs: layouts, timestep variants, batching, broken models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.errors import ModelLoadError, RequestCancelled
from inference.model import ImageJob, Stage
from inference.sd_layout import find_model_dirs
from inference.sd_turbo import SdTurboModel
from tests.inference.conftest import CPU
from tests.support.tiny_sd import build_tiny_sd, corrupt_file


def jobs(*prompts_seeds: tuple[str, int], steps: int = 2, side: int = 64) -> list[ImageJob]:
    return [ImageJob(p, "", side, side, steps, s) for p, s in prompts_seeds]


def run(model: SdTurboModel, batch: list[ImageJob]) -> np.ndarray:
    return model.generate(batch, lambda *_: None, lambda: False).images


@pytest.mark.parametrize(("flat", "timestep", "per_image"), [
    (False, "int64", False), (True, "float", True), (False, "float", False),
])
def test_layouts_and_timestep_signatures(tmp_path: Path, flat: bool, timestep: str, per_image: bool) -> None:
    root = build_tiny_sd(tmp_path / "m", flat=flat, timestep=timestep, timestep_per_image=per_image)
    model = SdTurboModel(root, CPU)
    assert model.name == "m" and model.provider == "cpu" and model.seq_len == 77
    images = run(model, jobs(("a red fox", 1), ("blue ocean", 2), steps=3))
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8


def test_batch_equals_alone_and_prompts_and_seeds_matter(tiny_sd_dir: Path) -> None:
    model = SdTurboModel(tiny_sd_dir, CPU)
    batch = run(model, jobs(("a red fox", 1), ("a red fox", 2), ("calm blue sea", 1), side=128))
    alone = run(model, jobs(("calm blue sea", 1), side=128))
    assert np.array_equal(batch[2], alone[0])
    assert not np.array_equal(batch[0], batch[1]) and not np.array_equal(batch[0], batch[2])


def test_progress_and_cancellation_between_steps(tiny_sd_dir: Path) -> None:
    model = SdTurboModel(tiny_sd_dir, CPU)
    seen: list[tuple[Stage, int, int]] = []
    model.generate(jobs(("cat", 1), steps=3), lambda *a: seen.append(a), lambda: False)
    assert seen == [(Stage.ENCODING, 0, 3), (Stage.DENOISING, 1, 3), (Stage.DENOISING, 2, 3),
                    (Stage.DENOISING, 3, 3), (Stage.DECODING, 3, 3)]
    calls = iter([False, True])
    with pytest.raises(RequestCancelled):
        model.generate(jobs(("cat", 1), steps=3), lambda *_: None, lambda: next(calls, True))


def test_model_json_sets_name_and_defaults(tmp_path: Path) -> None:
    root = build_tiny_sd(tmp_path / "dir", meta={"name": "turbo", "default_steps": 2, "max_steps": 3})
    model = SdTurboModel(root, CPU)
    assert model.name == "turbo" and (model.limits.default_steps, model.limits.max_steps) == (2, 3)


def test_broken_models_raise_model_load_error(tmp_path: Path, tiny_sd_dir: Path) -> None:
    def copy(name: str) -> Path:
        return Path(shutil.copytree(tiny_sd_dir, tmp_path / name))

    missing = copy("missing")
    shutil.rmtree(missing / "vae_decoder")
    corrupt = copy("corrupt")
    corrupt_file(corrupt / "text_encoder" / "model.onnx")
    swapped = copy("swapped")  # a VAE where the UNet should be: wrong signature
    shutil.copy(swapped / "vae_decoder" / "model.onnx", swapped / "unet" / "model.onnx")
    bad_meta = copy("bad-meta")
    (bad_meta / "model.json").write_text('{"steps": 3}')
    bad_tok = copy("bad-tokenizer")
    (bad_tok / "tokenizer" / "tokenizer.json").write_text("{")
    for root, message in [(missing, "missing vae_decoder"), (corrupt, "text_encoder"), (swapped, "unet: expected"),
                          (bad_meta, "unknown keys steps"), (bad_tok, "tokenizer")]:
        with pytest.raises(ModelLoadError, match=message):
            SdTurboModel(root, CPU)


def test_model_dir_discovery(tmp_path: Path, tiny_sd_dir: Path) -> None:
    assert find_model_dirs(tiny_sd_dir) == [tiny_sd_dir]
    shutil.copytree(tiny_sd_dir, tmp_path / "b")
    shutil.copytree(tiny_sd_dir, tmp_path / "a")
    (tmp_path / "notes").mkdir()
    assert [p.name for p in find_model_dirs(tmp_path)] == ["a", "b"]
    with pytest.raises(ModelLoadError, match="does not exist"):
        find_model_dirs(tmp_path / "nope")
