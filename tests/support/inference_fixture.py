"""A real inference process for tests: ``python -m inference serve`` with the built-in CPPN model, CPU.

API::

    inf = InferenceProcess(data_dir=tmp / "inference", env={...})
    inf.start()            # waits (bounded) until /health answers 200 (the default model is ready)
    inf.grpc_target        # "127.0.0.1:<port>" (same port across restart())
    inf.health() -> (status, body)
    inf.kill() / inf.stop() / inf.restart() / inf.log_text()

Fixture: ``inference_factory(**kwargs)`` -> started InferenceProcess; all stopped at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.devnet_fixture import free_ports
from tests.support.process import ManagedProcess

__all__ = ["InferenceError", "InferenceProcess", "inference_factory"]

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 90.0


class InferenceError(RuntimeError):
    """The inference process failed to start, died, or never became ready."""


class InferenceProcess(ManagedProcess):
    def __init__(self, *, data_dir: str | Path, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.grpc_port, self.health_port = free_ports(2, host)
        super().__init__("inference")

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.health_port}/health"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
        env.update({
            "INFERENCE_LISTEN": self.grpc_target,
            "INFERENCE_HEALTH_HOST": self.host,
            "INFERENCE_HEALTH_PORT": str(self.health_port),
            "INFERENCE_DATA_DIR": str(self.data_dir),
            "INFERENCE_PROVIDERS": "cpu",
            "INFERENCE_INTRA_OP_THREADS": "1",
            "INFERENCE_PNG_WORKERS": "1",
            "INFERENCE_LOG_JSON": "false",
        })
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def start(self) -> InferenceProcess:
        if self.is_running():
            raise InferenceError("inference is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "inference", "serve"], cwd=REPO_ROOT,
                                        env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                raise InferenceError(f"inference exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            with contextlib.suppress(OSError, ValueError):
                if self.health()[0] == 200:
                    return self
            if time.monotonic() > deadline:
                self.kill()
                raise InferenceError(f"inference not ready after {self.startup_timeout_s} s:\n"
                                     f"{self.log_text()[-4000:]}")
            time.sleep(0.05)

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.health_url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


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
