"""INFERENCE_REQUIRE_GPU: on a GPU deployment, health is degraded (503) while a model runs on the CPU."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from common.settings import ConfigError, load_settings
from inference.cppn_model import CppnModel
from inference.registry import ModelRegistry
from inference.settings import InferenceSettings
from tests.inference.conftest import CPU, ServerFactory


def http_health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class OnProvider:
    """A real model reporting another execution provider, as a session on that provider would."""

    def __init__(self, inner: CppnModel, provider: str) -> None:
        self.inner, self.provider = inner, provider
        self.name, self.kind, self.description, self.limits = inner.name, inner.kind, inner.description, inner.limits

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_cpu_fallback_on_a_gpu_deployment_is_degraded(start_server: ServerFactory) -> None:
    # This machine's onnxruntime has no CUDA provider, so "cuda,cpu" falls back to the CPU, as the GPU image
    # does when the CUDA libraries do not load.
    running = await start_server(providers=("cuda", "cpu"), require_gpu=True)
    assert running.server.health_http is not None
    status, body = http_health(running.server.health_http.port)
    assert status == 503 and body["status"] == "degraded", body
    assert "INFERENCE_REQUIRE_GPU" in body["reason"] and "cppn" in body["reason"]
    assert body["models"]["cppn"]["provider"] == "cpu"


async def test_cpu_without_the_requirement_is_ready(start_server: ServerFactory) -> None:
    running = await start_server(providers=("cuda", "cpu"))
    assert running.server.health_http is not None
    status, body = http_health(running.server.health_http.port)
    assert status == 200 and body["status"] == "ready" and "reason" not in body


async def test_a_model_on_a_gpu_provider_is_ready(start_server: ServerFactory, cppn_model: CppnModel) -> None:
    registry = ModelRegistry(CPU)
    registry.install(OnProvider(cppn_model, "cuda"))  # type: ignore[arg-type]
    running = await start_server(registry=registry, providers=("cuda", "cpu"), require_gpu=True)
    status, body = running.server.check()
    assert status == 200 and body["status"] == "ready", body


def test_requiring_a_gpu_without_a_gpu_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="INFERENCE_REQUIRE_GPU"):
        load_settings(InferenceSettings, {"INFERENCE_REQUIRE_GPU": "true", "INFERENCE_PROVIDERS": "cpu"})
    assert load_settings(InferenceSettings, {"INFERENCE_REQUIRE_GPU": "true"}).require_gpu
