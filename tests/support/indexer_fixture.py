"""A real indexer process for tests: ``python -m indexer`` on free loopback ports.

API (other services' tests may rely on it)::

    idx = IndexerProcess(ogmios_url=..., kupo_url=..., db_path=tmp / "indexer.sqlite3", env={...})
    idx.start()                  # waits (bounded) until it serves gRPC (its ready file appears); returns self
    idx.grpc_target              # "127.0.0.1:<port>"  (same port across restart())
    idx.health_url               # "http://127.0.0.1:<port>/health"
    idx.health() -> (status, body)
    idx.wait_health({200}, timeout_s=30) -> body
    idx.kill()                   # SIGKILL, like a crash
    idx.stop()                   # SIGTERM, graceful
    idx.restart()                # same ports and store
    idx.log_text()

Fixture: ``indexer_factory(devnet=None, **kwargs)`` -> started IndexerProcess (``devnet`` fills in the
Ogmios and Kupo URLs); every one is stopped at teardown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import GrpcServiceProcess, service_environment

__all__ = ["IndexerError", "IndexerProcess", "indexer_factory"]

STARTUP_TIMEOUT_S = 60.0


class IndexerError(RuntimeError):
    """The indexer process failed to start, died, or never reached the expected health."""


class IndexerProcess(GrpcServiceProcess):
    def __init__(self, *, ogmios_url: str, kupo_url: str, db_path: str | Path, env: dict[str, str] | None = None,
                 host: str = "127.0.0.1", startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.ogmios_url = ogmios_url
        self.kupo_url = kupo_url
        self.db_path = Path(db_path)
        self.env = dict(env or {})
        super().__init__("indexer", host=host, startup_timeout_s=startup_timeout_s)
        self.ready_file = self.db_path.parent / f"indexer-ready-{self.grpc_port}.json"

    def environment(self) -> dict[str, str]:
        return service_environment("INDEXER_", {
            "INDEXER_OGMIOS_URL": self.ogmios_url,
            "INDEXER_KUPO_URL": self.kupo_url,
            "INDEXER_DB_PATH": str(self.db_path),
            "INDEXER_LISTEN": self.grpc_target,
            "INDEXER_HEALTH_HOST": self.host,
            "INDEXER_HEALTH_PORT": str(self.health_port),
            "INDEXER_READY_FILE": str(self.ready_file),
            "INDEXER_LOG_JSON": "false",
            "INDEXER_RECONNECT_MAX_BACKOFF_S": "0.5",
        }, self.env)

    def start(self) -> IndexerProcess:
        if self.is_running():
            raise IndexerError("the indexer is already running")
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.spawn_module(["indexer"], self.environment())
        self.wait_ready(self.ready_file.exists, timeout_s=self.startup_timeout_s, error=IndexerError, name="indexer",
                        not_ready="not serving", retry_on=())
        return self

    def wait_health(self, statuses: Collection[int], timeout_s: float = 30.0,
                    check: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Poll /health until its status is one of ``statuses`` (and ``check(body)`` holds)."""
        deadline = time.monotonic() + timeout_s
        last: tuple[int, Any] = (0, None)
        while time.monotonic() < deadline:
            self.raise_if_exited(IndexerError, "indexer")
            with contextlib.suppress(OSError, ValueError):
                last = self.health()
                if last[0] in statuses and (check is None or check(last[1])):
                    return last[1]
            time.sleep(0.05)
        raise IndexerError(f"health never reached {sorted(statuses)} (last {last}):\n{self.log_text()[-3000:]}")


@pytest.fixture
def indexer_factory(tmp_path: Path) -> Iterator[Callable[..., IndexerProcess]]:
    """``make(devnet=None, **kwargs)`` starts an IndexerProcess; all are closed at teardown."""
    started: list[IndexerProcess] = []

    def make(devnet: Any = None, **kwargs: Any) -> IndexerProcess:
        if devnet is not None:
            kwargs.setdefault("ogmios_url", devnet.ogmios_url)
            kwargs.setdefault("kupo_url", devnet.kupo_url)
        kwargs.setdefault("db_path", tmp_path / f"indexer-{len(started)}" / "indexer.sqlite3")
        process = IndexerProcess(**kwargs)
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.close()
