"""The gateway as a real process for tests: ``python -m gateway`` on a free loopback port.

API (the billing, web3 and generations tests rely on it)::

    gw = GatewayProcess(state_dir=tmp / "gateway", env={"GATEWAY_INFERENCE_TARGET": inf.grpc_target, ...})
    gw.start()                   # waits (bounded) until GET /health answers (200 or 503); returns self
    gw.url                       # "http://127.0.0.1:<port>"  (same port and state across restart())
    gw.request("POST", "/v1/auth/signup", json_body={...}, headers={...}) -> (status, headers, body bytes)
                                 # header names lower-cased
    gw.json("GET", "/v1/account", headers=...) -> (status, parsed JSON)
    gw.health() -> (status, body)
    gw.cli("reconcile") -> subprocess.CompletedProcess   # ``python -m gateway <args>`` with the same settings
    gw.kill()  # SIGKILL, like a crash          gw.stop()  # SIGTERM, graceful
    gw.restart(); gw.log_text()

Defaults suit tests: cheap argon2, generous auth rate limits, console logs, a fixed JWT secret in the
state directory (so tokens survive restart()). Anything in ``env`` overrides them.

Fixture: ``gateway_factory(**kwargs)`` -> started GatewayProcess; all stopped at teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import REPO_ROOT as REPO_ROOT  # re-exported: tests read the checkout's files
from tests.support.process import ManagedProcess, free_ports, service_environment

__all__ = ["GatewayError", "GatewayProcess", "gateway_factory"]

STARTUP_TIMEOUT_S = 60.0


class GatewayError(RuntimeError):
    """The gateway process failed to start, died, or never answered."""


class GatewayProcess(ManagedProcess):
    def __init__(self, *, state_dir: str | Path, env: dict[str, str] | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.state_dir = Path(state_dir)
        self.env = dict(env or {})
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        (self.port,) = free_ports(1, host)
        super().__init__("gateway")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        return service_environment("GATEWAY_", {
            "GATEWAY_HOST": self.host,
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_STATE_DIR": str(self.state_dir),
            "GATEWAY_LOG_JSON": "false",
            "GATEWAY_PASSWORD_HASH_MEMORY_KIB": "1024",
            "GATEWAY_PASSWORD_HASH_TIME_COST": "1",
            "GATEWAY_AUTH_RATE_PER_MINUTE": "1000",
        }, self.env)

    def start(self) -> GatewayProcess:
        if self.is_running():
            raise GatewayError("the gateway is already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.spawn_module(["gateway", "serve"], self.environment())
        self.wait_ready(self._answers, timeout_s=self.startup_timeout_s, error=GatewayError, name="gateway",
                        not_ready="not answering")
        return self

    def _answers(self) -> bool:
        self.health()
        return True

    def request(self, method: str, path: str, *, json_body: Any = None, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 60.0) -> tuple[int, dict[str, str], bytes]:
        data = body if body is not None else (None if json_body is None else json.dumps(json_body).encode())
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, _headers, raw = self.request(method, path, **kwargs)
        return status, json.loads(raw) if raw else None

    def health(self) -> tuple[int, dict[str, Any]]:
        status, _headers, raw = self.request("GET", "/health", timeout_s=5)
        return status, json.loads(raw or b"{}")

    def cli(self, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``python -m gateway ARGS`` with this gateway's settings (e.g. ``reconcile``)."""
        return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT, env=self.environment(),
                              capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """``make(**kwargs)`` starts a GatewayProcess (state in tmp_path); all are closed at teardown."""
    started: list[GatewayProcess] = []

    def make(**kwargs: Any) -> GatewayProcess:
        kwargs.setdefault("state_dir", tmp_path / f"gateway-{len(started)}")
        process = GatewayProcess(**kwargs)
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.close()
