"""InferenceSettings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import ConfigError, load_settings
from inference.settings import InferenceSettings


def test_defaults_and_overrides() -> None:
    settings = load_settings(InferenceSettings, {})
    assert settings.listen == "127.0.0.1:50053" and settings.providers == ("tensorrt", "cuda", "cpu")
    settings = load_settings(InferenceSettings, {"INFERENCE_PROVIDERS": "cuda,cpu", "INFERENCE_MAX_BATCH": "4",
                                                 "INFERENCE_MODEL_DIR": "/models"})
    assert settings.providers == ("cuda", "cpu") and settings.max_batch == 4 and settings.model_dir == Path("/models")


@pytest.mark.parametrize(("env", "variable"), [
    ({"INFERENCE_PROVIDERS": "gpu"}, "INFERENCE_PROVIDERS"),
    ({"INFERENCE_QUEUE_MAX": "0"}, "INFERENCE_QUEUE_MAX"),
    ({"INFERENCE_MAX_BATCH": "many"}, "INFERENCE_MAX_BATCH"),
    ({"INFERENCE_PNG_COMPRESS_LEVEL": "12"}, "INFERENCE_PNG_COMPRESS_LEVEL"),
    ({"INFERENCE_TLS_CERT": "/c.pem"}, "INFERENCE_TLS_KEY"),
    ({"INFERENCE_MAX_WAIT_MS": "-1"}, "INFERENCE_MAX_WAIT_MS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(InferenceSettings, env)
