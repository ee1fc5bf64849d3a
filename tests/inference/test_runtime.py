"""Provider selection and session creation."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.cppn import cppn_model_bytes
from inference.errors import ModelLoadError
from inference.runtime import RuntimeConfig, create_session, short_provider_name, usable_providers


def test_providers_keep_the_configured_order_and_fall_back_to_cpu() -> None:
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert usable_providers(RuntimeConfig(), gpu) == gpu
    assert usable_providers(RuntimeConfig(providers=("cuda", "cpu")), gpu) == gpu[1:]
    assert usable_providers(RuntimeConfig(), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert usable_providers(RuntimeConfig(providers=("cuda",)), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert short_provider_name("CUDAExecutionProvider") == "cuda"


def test_session_reports_the_provider_in_use() -> None:
    session, provider = create_session(cppn_model_bytes(), RuntimeConfig(intra_op_threads=1), label="cppn")
    assert provider == "cpu" and session.get_inputs()[0].name == "coords"


def test_unloadable_models_raise_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        create_session(tmp_path / "missing.onnx", RuntimeConfig(), label="x")
    with pytest.raises(ModelLoadError, match="cannot load"):
        create_session(b"garbage", RuntimeConfig(), label="x")
