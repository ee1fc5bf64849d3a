"""The burns stack as real processes on loopback: devnet (1 s blocks), indexer, signer, gateway — on
SQLite, or on a real PostgreSQL server (``build_stack(database_url=…)``, where more replicas can join).

One stack per test module (starting it costs seconds on a shared box); each test uses its own user and
generation ids and checks its own batches, so tests stay independent in what they assert. The gateway
process can be killed, restarted and started with the test-only crash hook; the signer and the
indexer can be stopped and started again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from gateway.credits.ledger import Ledger
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database, open_database
from tests.gateway.conftest import BACKENDS
from tests.signer.helpers import SignerProcess, provision, short_tmp
from tests.support.devnet_fixture import DevnetProcess, free_ports
from tests.support.indexer_fixture import IndexerProcess
from tests.support.process import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[3]
TREASURY_TOKENS = 600
TREASURY_LOVELACE = 400_000_000
CONFIRMATIONS = 2


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition",
             interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


class GatewayProcess(ManagedProcess):
    """``python -m gateway serve`` with the burner on; ``env`` adds or overrides variables per start."""

    def __init__(self, base_env: dict[str, str]) -> None:
        super().__init__("gateway-burns")
        self.base_env = base_env
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra: dict[str, str] = {}

    def ensure(self, **extra: str) -> GatewayProcess:
        """Running with exactly these extra variables (restarted only when they differ)."""
        if self.is_running() and self.extra == extra:
            return self
        self.stop()
        return self.start(**extra)

    def start(self, **extra: str) -> GatewayProcess:
        self.extra = dict(extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "CREATORPASS_TEST_"))}
        env.update(self.base_env, GATEWAY_PORT=str(self.port), PYTHONPATH=str(REPO_ROOT), **extra)
        self.process = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=REPO_ROOT, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited {self.process.returncode}:\n{self.log_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway not listening:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def call(self, method: str, path: str, body: Any = None, token: str = "",
             extra_headers: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **(extra_headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def call_text(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.url + path, timeout=30) as reply:
            return reply.status, reply.read().decode()


@dataclass
class Stack:
    devnet: DevnetProcess
    indexer: IndexerProcess
    signer: SignerProcess
    signer_env: dict[str, str]
    workdir: Path
    gateway: GatewayProcess
    identity: signer_pb2.Identity
    state_dir: Path
    database_url: str = ""
    _db: Database | None = None

    @property
    def unit(self) -> str:
        return f"{self.identity.asset.policy_id}.{self.identity.asset.asset_name}"

    def ledger(self) -> Ledger:
        """The real ledger on the gateway's database (PostgreSQL: close it with ``await ledger.close()``)."""
        if self.database_url:
            return PostgresLedger(self.database_url, max_size=2)
        return SqliteLedger(self.db())

    def db(self) -> Database:
        """The gateway's database, for the tests' read-only looks at the burn tables."""
        if self._db is None:
            self._db = open_database(self.database_url, self.state_dir / "gateway.sqlite3")
        return self._db

    def new_user(self) -> tuple[str, str]:
        """(user id, access token) of a fresh card account."""
        status, body = self.gateway.call("POST", "/v1/auth/signup",
                                         {"email": f"{uuid.uuid4().hex[:10]}@burns.test", "password": "burns-test-pw"})
        assert status == 201, body
        token = body["access_token"]
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        return str(claims["sub"]), token

    def treasury_tokens(self, address: str = "") -> int:
        """$CREATE at the custodial address (or ``address``), straight from Kupo (not through the gateway
        or the indexer)."""
        url = f"{self.devnet.kupo_url}/matches/{address or self.identity.custodial_address}?unspent"
        with urllib.request.urlopen(url, timeout=10) as reply:
            matches = json.loads(reply.read())
        return sum(int(m["value"].get("assets", {}).get(self.unit, 0)) for m in matches)

    def start_signer(self, **overrides: str) -> None:
        self.signer = SignerProcess({**self.signer_env, **overrides}, self.workdir)
        self.signer.wait_ready()

    def gateway_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(self.gateway.base_env, PYTHONPATH=str(REPO_ROOT))
        return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120)


def _identity(target: str) -> signer_pb2.Identity:
    channel = grpc.insecure_channel(target)
    try:
        return signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(signer_pb2.GetIdentityRequest(), timeout=10)
    finally:
        channel.close()


ADDRESS_MODE_POLICY = "5e" * 28  # address mode burns a token the studio did not mint


@contextlib.contextmanager
def build_stack(tmp: Path, mode: str = "mint", *, database_url: str = "",
                env: dict[str, str] | None = None) -> Iterator[Stack]:
    devnet = DevnetProcess(block_time=1.0).start()
    workdir = short_tmp()
    extra = {"SIGNER_SYSTEM_START": devnet.info()["system_start"], "SIGNER_FSYNC": "false",
             "SIGNER_LOG_LEVEL": "INFO", "SIGNER_MAX_TOKENS_PER_DAY": "100000"}
    if mode == "address":
        extra["SIGNER_ASSET_POLICY_ID"] = ADDRESS_MODE_POLICY
    prov = provision("file", workdir, mode, extra=extra)
    signer = SignerProcess(prov.env, workdir)
    signer.wait_ready()
    identity = _identity(signer.target)
    asset = f"{identity.asset.policy_id}.{identity.asset.asset_name}"
    # Two treasury UTxOs: the burner splits them into lanes itself.
    devnet.fund(identity.custodial_address, TREASURY_LOVELACE // 2, {asset: TREASURY_TOKENS // 2})
    devnet.fund(identity.custodial_address, TREASURY_LOVELACE // 2, {asset: TREASURY_TOKENS // 2})
    indexer = IndexerProcess(ogmios_url=devnet.ogmios_url, kupo_url=devnet.kupo_url,
                             db_path=tmp / "indexer" / "indexer.sqlite3",
                             env={"INDEXER_TREASURY_ADDRESS": identity.custodial_address,
                                  "INDEXER_SINK_ADDRESS": identity.sink_address,
                                  "INDEXER_POLICY_ID": identity.asset.policy_id,
                                  "INDEXER_ASSET_NAME": identity.asset.asset_name}).start()
    state_dir = tmp / "gateway"
    base_env = {
        "GATEWAY_STATE_DIR": str(state_dir), "GATEWAY_INDEXER_TARGET": indexer.grpc_target,
        "GATEWAY_SIGNER_TARGET": signer.target, "GATEWAY_BURN_ENABLED": "true", "GATEWAY_BURN_LANES": "3",
        "GATEWAY_BURN_BATCH_MAX": "40", "GATEWAY_BURN_BATCH_WAIT_S": "0.5",
        "GATEWAY_BURN_CONFIRMATIONS": str(CONFIRMATIONS), "GATEWAY_BURN_POLL_INTERVAL_S": "0.3",
        "GATEWAY_BURN_RETRY_MAX_S": "2", "GATEWAY_BURN_TREASURY_MIN_TOKENS": "10",
        "GATEWAY_BURN_TREASURY_MIN_LOVELACE": "5000000", "GATEWAY_BURN_CALL_TIMEOUT_S": "5",
        "GATEWAY_LOG_JSON": "false", "GATEWAY_PASSWORD_HASH_MEMORY_KIB": "1024",
        "GATEWAY_PASSWORD_HASH_TIME_COST": "1", "GATEWAY_AUTH_RATE_PER_MINUTE": "1000",
        **({"GATEWAY_DATABASE_URL": database_url} if database_url else {}), **(env or {}),
    }
    gateway = GatewayProcess(base_env).start()
    built = Stack(devnet, indexer, signer, prov.env, workdir, gateway, identity, state_dir, database_url)
    try:
        yield built
    finally:
        if built._db is not None:
            built._db.close()
        gateway.close()
        built.signer.stop()
        indexer.close()
        devnet.close()


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack as real processes, the gateway on SQLite or on a real PostgreSQL (its own schema)."""
    url = request.getfixturevalue("pg_server").new_schema() if request.param == "postgresql" else ""
    with build_stack(tmp_path_factory.mktemp(f"burns-{request.param}"), database_url=url) as built:
        yield built


async def spend(stack: Stack, user_id: str, count: int, prefix: str) -> list[str]:
    """``count`` card-path spends for ``user_id`` through the real ledger (purchase, hold, post)."""
    ledger = stack.ledger()
    try:
        await ledger.credit_purchase(user_id=user_id, credits=count, key=f"test:{prefix}:{uuid.uuid4().hex}")
        ids = [f"{prefix}-{uuid.uuid4().hex[:12]}" for _ in range(count)]
        for gen in ids:
            await ledger.hold(user_id=user_id, generation_id=gen, timeout_s=300)
            await ledger.post(gen)
    finally:
        if isinstance(ledger, PostgresLedger):
            await ledger.close()
    return ids


def batches_for(stack: Stack, ids: list[str]) -> list[dict[str, Any]]:
    """The /v1/burns batches that carry any of ``ids`` (via the store, read-only)."""
    marks = ",".join("?" * len(ids))
    sql = ("SELECT b.id, b.state, b.tx_id, b.count, b.depth, b.lane FROM burn_batches b WHERE b.id IN"
           f" (SELECT batch_id FROM burn_batch_items WHERE generation_id IN ({marks}))")
    rows = stack.db().read_sync(lambda c: c.execute(sql, ids).fetchall())
    return [dict(zip(("id", "state", "tx_id", "count", "depth", "lane"), tuple(r), strict=True)) for r in rows]


def settled(stack: Stack, ids: list[str]) -> int:
    marks = ",".join("?" * len(ids))
    return int(stack.db().read_sync(lambda c: c.execute(
        f"SELECT COUNT(*) FROM burn_settlements WHERE generation_id IN ({marks})", ids).fetchone()[0]))
