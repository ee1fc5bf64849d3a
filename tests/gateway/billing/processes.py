"""Real processes for the card-path end-to-end test: ``python -m inference`` and ``python -m gateway``.

(The shared gateway process fixture lives in ``tests/support/gateway_fixture.py`` once it exists;
these two are the minimum this test needs: start, wait until ready, stop, logs.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.devnet_fixture import free_ports
from tests.support.process import ManagedProcess

__all__ = ["GatewayProcess", "InferenceProcess"]

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 90.0


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class _Service(ManagedProcess):
    ready_path = "/health"

    def __init__(self, name: str, env: dict[str, str], http_port: int) -> None:
        super().__init__(name)
        self.name = name
        self.env = env
        self.http_port = http_port

    def start(self) -> _Service:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen([sys.executable, "-m", self.name], cwd=REPO, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            try:
                if _status(f"http://127.0.0.1:{self.http_port}{self.ready_path}") == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {STARTUP_TIMEOUT_S} s:\n{self.log_text()[-4000:]}")


class InferenceProcess(_Service):
    """The inference server with only its built-in generator (no model files needed)."""

    def __init__(self, state_dir: Path) -> None:
        grpc_port, health_port = free_ports(2)
        (state_dir / "models").mkdir(parents=True, exist_ok=True)
        self.target = f"127.0.0.1:{grpc_port}"
        super().__init__("inference", {
            "INFERENCE_LISTEN": self.target, "INFERENCE_HEALTH_PORT": str(health_port),
            "INFERENCE_MODEL_DIR": str(state_dir / "models"), "INFERENCE_PROVIDERS": "cpu",
            "INFERENCE_INTRA_OP_THREADS": "1", "INFERENCE_DATA_DIR": str(state_dir / "data"),
        }, health_port)


class GatewayProcess(_Service):
    """``python -m gateway`` on a free loopback port; settings as ``GATEWAY_*`` (secrets as files)."""

    ready_path = "/v1/billing/packs"  # /health is 503 without the chain services this test does not run

    def __init__(self, state_dir: Path, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__("gateway", {"GATEWAY_PORT": str(self.port), "GATEWAY_HOST": "127.0.0.1",
                                     "GATEWAY_STATE_DIR": str(state_dir), "GATEWAY_LOG_JSON": "false", **env},
                         self.port)
