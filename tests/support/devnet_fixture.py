"""A real devnet process for tests: ``python -m devnet`` on free loopback ports.

Stable API (other services' tests rely on it)::

    dev = DevnetProcess(block_time=0, state_dir=None, seed="creatorpass-test", extra_args=())
    dev.start()                       # waits (bounded) until GET /devnet/info answers; returns self
    dev.ogmios_url                    # "ws://127.0.0.1:<port>"   (Ogmios v6 JSON-RPC over WebSocket)
    dev.ogmios_http_url               # "http://127.0.0.1:<port>" (same port, HTTP POST /)
    dev.kupo_url                      # "http://127.0.0.1:<port>"
    dev.control_url                   # "http://127.0.0.1:<port>"
    dev.ogmios_port, dev.kupo_port, dev.control_port
    dev.fund(address, lovelace, assets=None) -> tx_id   # assets: {"<policy hex>.<name hex>": qty}
    dev.blocks(count=1, fill=None) -> dict              # {"produced", "tip", "blocks": [...]}; confirms mempool txs
    dev.rollback(blocks, drop_transactions=True) -> dict
    dev.info() -> dict                # network, magic, tip, genesis keys (addresses + signing_key_cbor), ports …
    dev.genesis_key(i) -> dict        # {"address", "signing_key_cbor", "verification_key", "key_hash", "name"}
    dev.stop()                        # SIGTERM, graceful (falls back to SIGKILL after a timeout)
    dev.kill()                        # SIGKILL, like a crash
    dev.restart()                     # same ports and state dir (a persisted chain comes back)
    dev.log_text()                    # the process's stdout+stderr so far, for assertion messages

A funded tx is only in the mempool until a block is produced: with ``block_time=0`` (the default here)
call ``dev.blocks()``.  The control API starts after the Ogmios and Kupo servers, so once ``start()``
returns all three ports accept connections.

Fixtures: ``devnet`` (function scope, block_time=0, in-memory) and ``devnet_factory`` (``make(**kwargs)``
-> started DevnetProcess; every one is stopped at teardown).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import ManagedProcess, free_ports, http_json, service_environment

__all__ = ["DevnetError", "DevnetProcess", "devnet", "devnet_factory", "free_ports"]

STARTUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 120.0


class DevnetError(RuntimeError):
    """The devnet process failed to start, died, or answered a control call with an error."""


class DevnetProcess(ManagedProcess):
    def __init__(
        self,
        *,
        block_time: float = 0.0,
        state_dir: str | Path | None = None,
        seed: str = "creatorpass-test",
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        env: dict[str, str] | None = None,
    ) -> None:
        self.block_time = block_time
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.seed = seed
        self.extra_args = list(extra_args)
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.env = env
        self.ogmios_port, self.kupo_port, self.control_port = free_ports(3, host)
        super().__init__("devnet")

    # -- URLs -----------------------------------------------------------------------------------------

    @property
    def ogmios_url(self) -> str:
        return f"ws://{self.host}:{self.ogmios_port}"

    @property
    def ogmios_http_url(self) -> str:
        return f"http://{self.host}:{self.ogmios_port}"

    @property
    def kupo_url(self) -> str:
        return f"http://{self.host}:{self.kupo_port}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    # -- lifecycle ------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "devnet",
            "--host", self.host,
            "--ogmios-port", str(self.ogmios_port),
            "--kupo-port", str(self.kupo_port),
            "--control-port", str(self.control_port),
            "--block-time", str(self.block_time),
            "--seed", self.seed,
            "--log-json", "false",
        ]  # fmt: skip
        if self.state_dir is not None:
            cmd += ["--state-dir", str(self.state_dir)]
        return cmd + self.extra_args

    def start(self) -> DevnetProcess:
        if self.is_running():
            raise DevnetError("the devnet is already running")
        self.spawn(self.command(), service_environment("DEVNET_", {}, self.env))
        self.wait_ready(self._answers, timeout_s=self.startup_timeout_s, error=DevnetError, name="devnet",
                        retry_on=(OSError, DevnetError))
        return self

    def _answers(self) -> bool:
        self.info()
        return True

    # -- control API ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A raw control-API call: (HTTP status, decoded JSON body)."""
        return http_json(method, self.control_url + path, body, REQUEST_TIMEOUT_S)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.request(method, path, body)
        if status != 200:
            raise DevnetError(f"{method} {path} -> {status}: {payload}")
        return payload

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/devnet/info")  # type: ignore[no-any-return]

    def fund(self, address: str, lovelace: int, assets: dict[str, int] | None = None) -> str:
        body: dict[str, Any] = {"address": str(address), "lovelace": lovelace}
        if assets:
            body["assets"] = assets
        return str(self._call("POST", "/devnet/fund", body)["transaction_id"])

    def blocks(self, count: int = 1, fill: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"count": count}
        if fill:
            body["fill"] = fill
        return self._call("POST", "/devnet/blocks", body)  # type: ignore[no-any-return]

    def rollback(self, blocks: int, drop_transactions: bool = True) -> dict[str, Any]:
        body = {"blocks": blocks, "drop_transactions": drop_transactions}
        return self._call("POST", "/devnet/rollback", body)  # type: ignore[no-any-return]

    def genesis_key(self, index: int = 0) -> dict[str, str]:
        return self.info()["genesis"]["keys"][index]  # type: ignore[no-any-return]


@pytest.fixture
def devnet_factory(tmp_path: Path) -> Iterator[Callable[..., DevnetProcess]]:
    """``make(**kwargs)`` starts a DevnetProcess (kwargs as its constructor); all are closed afterwards."""
    started: list[DevnetProcess] = []

    def make(**kwargs: Any) -> DevnetProcess:
        dev = DevnetProcess(**kwargs)
        started.append(dev)
        return dev.start()

    yield make
    for dev in started:
        dev.close()


@pytest.fixture
def devnet(devnet_factory: Callable[..., DevnetProcess]) -> DevnetProcess:
    """A started in-memory devnet with ``block_time=0``: blocks come only from ``devnet.blocks()``."""
    return devnet_factory(block_time=0)
