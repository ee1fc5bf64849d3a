"""Fixtures for the inference tests: in-process servers on loopback and a gate to hold a batch."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
from inference.cppn_model import CppnModel
from inference.model import GenerateResult, ImageJob, Model, StageFn, StopFn
from inference.registry import ModelRegistry
from inference.runtime import RuntimeConfig
from inference.server import InferenceServer, registry_from
from inference.settings import InferenceSettings
from tests.support.tiny_sd import build_tiny_sd

CPU = RuntimeConfig(providers=("cpu",), intra_op_threads=1)


def make_settings(**overrides: Any) -> InferenceSettings:
    base: dict[str, Any] = {"listen": "127.0.0.1:0", "health_port": 0, "providers": ("cpu",),
                            "intra_op_threads": 1, "png_workers": 1, "log_json": False}
    settings = InferenceSettings(**{**base, **overrides})
    settings.validate()
    return settings


class GatedModel:
    """Wraps a real model; each batch waits for ``gate`` so tests can hold the worker deterministically."""

    def __init__(self, inner: Model, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.kind, self.description, self.provider = inner.kind, inner.description, inner.provider
        self.limits = inner.limits
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def batch_key(self, width: int, height: int, steps: int) -> Hashable:
        return self.inner.batch_key(width, height, steps)

    def generate(self, jobs: Sequence[ImageJob], on_stage: StageFn, should_stop: StopFn) -> GenerateResult:
        self.batches.append(len(jobs))
        self.entered.set()
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        return self.inner.generate(jobs, on_stage, should_stop)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10), "no batch reached the model"
        self.entered.clear()


@dataclasses.dataclass
class Running:
    server: InferenceServer
    channel: grpc.aio.Channel
    stub: inference_pb2_grpc.InferenceServiceStub


ServerFactory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """``await start_server(registry=None, **settings)`` → a started, loaded server and a client stub."""
    started: list[Running] = []
    gates: list[GatedModel] = []

    async def factory(registry: ModelRegistry | None = None, **overrides: Any) -> Running:
        settings = make_settings(**overrides)
        if registry is not None:
            gates.extend(e.model for e in registry.entries.values() if isinstance(e.model, GatedModel))
        server = await InferenceServer(settings, registry if registry is not None else registry_from(settings)).start()
        await server.wait_loaded()
        channel = grpc.aio.insecure_channel(server.target)
        running = Running(server, channel, inference_pb2_grpc.InferenceServiceStub(channel))
        started.append(running)
        return running

    yield factory
    for gate in gates:
        gate.gate.set()
    for running in started:
        await running.channel.close()
        await running.server.stop(grace_s=0.5)


@pytest.fixture(scope="session")
def cppn_model() -> CppnModel:
    return CppnModel(CPU)


@pytest.fixture
def gated_registry(cppn_model: CppnModel) -> tuple[ModelRegistry, GatedModel]:
    """A registry whose default model is the CPPN behind a gate."""
    registry = ModelRegistry(CPU)
    gated = GatedModel(cppn_model)
    registry.install(gated)
    return registry, gated


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


def request(prompt: str = "a red fox in the snow", **fields: Any) -> inference_pb2.GenerateRequest:
    fields.setdefault("width", 64)
    fields.setdefault("height", 64)
    return inference_pb2.GenerateRequest(prompt=prompt, **fields)


async def collect(call: Any) -> list[inference_pb2.GenerateEvent]:
    """Read a Generate stream to its end (with read(), so a partly read call can be finished)."""
    events = []
    while (event := await call.read()) is not grpc.aio.EOF:
        events.append(event)
    return events
