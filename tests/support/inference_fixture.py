"""A real inference process for tests: ``python -m inference serve`` with the built-in CPPN model, CPU.

API::

    inf = InferenceProcess(data_dir=tmp / "inference", env={...})
    inf.start()            # waits (bounded) until /health answers 200 (the default model is ready)
    inf.grpc_target        # "<host>:<port>" (same port across restart(); grpc_port= fixes it, host= the address)
    inf.health() -> (status, body)
    inf.kill() / inf.stop() / inf.restart() / inf.log_text()

Fixture: ``inference_factory(**kwargs)`` -> started InferenceProcess; all stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import GrpcServiceProcess, service_environment

__all__ = ["InferenceError", "InferenceProcess", "inference_factory"]

STARTUP_TIMEOUT_S = 90.0


class InferenceError(RuntimeError):
    """The inference process failed to start, died, or never became ready."""


class InferenceProcess(GrpcServiceProcess):
    def __init__(self, *, data_dir: str | Path, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = STARTUP_TIMEOUT_S, grpc_port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        super().__init__("inference", host=host, startup_timeout_s=startup_timeout_s, grpc_port=grpc_port)

    def environment(self) -> dict[str, str]:
        return service_environment("INFERENCE_", {
            "INFERENCE_LISTEN": self.grpc_target,
            "INFERENCE_HEALTH_HOST": self.host,
            "INFERENCE_HEALTH_PORT": str(self.health_port),
            "INFERENCE_DATA_DIR": str(self.data_dir),
            "INFERENCE_PROVIDERS": "cpu",
            "INFERENCE_INTRA_OP_THREADS": "1",
            "INFERENCE_PNG_WORKERS": "1",
            "INFERENCE_LOG_JSON": "false",
        }, self.env)

    def start(self) -> InferenceProcess:
        if self.is_running():
            raise InferenceError("inference is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spawn_module(["inference", "serve"], self.environment())
        self.wait_ready(lambda: self.health()[0] == 200, timeout_s=self.startup_timeout_s, error=InferenceError,
                        name="inference")
        return self


@pytest.fixture
def inference_factory(tmp_path: Path) -> Iterator[Callable[..., InferenceProcess]]:
    """``make(**kwargs)`` starts an InferenceProcess (built-in model, CPU); all are closed at teardown."""
    started: list[InferenceProcess] = []

    def make(**kwargs: Any) -> InferenceProcess:
        kwargs.setdefault("data_dir", tmp_path / f"inference-{len(started)}")
        process = InferenceProcess(**kwargs)
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.close()
