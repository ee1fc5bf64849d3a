"""A service under test as a real subprocess: log capture, graceful stop, SIGKILL, restart.

Subclasses (DevnetProcess, IndexerProcess, ...) say how to start and when the service is ready; the
pieces every fixture shares live here: free ports, the child's environment, spawning into the log,
waiting (bounded) for readiness, and JSON over loopback HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

__all__ = ["REPO_ROOT", "GrpcServiceProcess", "ManagedProcess", "free_ports", "health_json", "http_json",
           "service_environment"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_POLL_S = 0.05


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def service_environment(prefix: str, settings: Mapping[str, str],
                        overrides: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without ``prefix*`` variables, then ``settings``, then ``overrides``;
    the repository first on PYTHONPATH so ``python -m <service>`` runs this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    env.update(settings)
    env.update(overrides or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def http_json(method: str, url: str, body: Any = None, timeout_s: float = 60.0) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body) of a JSON request; a body that is not JSON comes back as text."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        payload = err.read()
        try:
            return err.code, json.loads(payload)
        except ValueError:
            return err.code, payload.decode(errors="replace")


def health_json(url: str, timeout_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a GET of a health endpoint; an empty error body reads as ``{}``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


class ManagedProcess:
    """Lifecycle shared by every service fixture; ``start()`` is the subclass's."""

    def __init__(self, log_prefix: str) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"{log_prefix}-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> Self:
        raise NotImplementedError

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        """Start ``args`` from the repository root, stdout and stderr into this process's log."""
        self.process = subprocess.Popen(list(args), cwd=REPO_ROOT, env=dict(env), stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def spawn_module(self, module_args: Sequence[str], env: Mapping[str, str]) -> None:
        """``python -m MODULE ARGS`` with this interpreter (see :meth:`spawn`)."""
        self.spawn([sys.executable, "-m", *module_args], env)

    def raise_if_exited(self, error: type[Exception], name: str) -> None:
        """``error`` with the log's tail when the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise error(f"{name} exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")

    def wait_ready(self, ready: Callable[[], bool], *, timeout_s: float, error: type[Exception], name: str,
                   not_ready: str = "not ready", retry_on: tuple[type[Exception], ...] = (OSError, ValueError)) -> None:
        """Poll ``ready()`` (its ``retry_on`` errors mean "not yet") until it holds; ``error`` when the process
        exits first, or after ``timeout_s``, when the process is killed."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.raise_if_exited(error, name)
            with contextlib.suppress(*retry_on):
                if ready():
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise error(f"{name} {not_ready} after {timeout_s} s:\n{self.log_text()[-4000:]}")
            time.sleep(_POLL_S)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout_s``); the exit code, None if never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, like a crash: the service keeps only what it made durable."""
        if self.is_running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(15)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")


class GrpcServiceProcess(ManagedProcess):
    """A service answering gRPC on one free port and HTTP ``/health`` on another (indexer, inference)."""

    def __init__(self, log_prefix: str, *, host: str, startup_timeout_s: float, grpc_port: int = 0) -> None:
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.grpc_port, self.health_port = free_ports(2, host)
        self.grpc_port = grpc_port or self.grpc_port
        super().__init__(log_prefix)

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.health_port}/health"

    def health(self) -> tuple[int, dict[str, Any]]:
        return health_json(self.health_url)
