"""Burner benchmark (``make bench BENCH=burns``): generations/s settled into confirmed burns (DESIGN §10).

Real processes: the devnet with 1 s blocks, the indexer, the signer (default durability, default caps:
100 tokens per tx); the burner itself runs in this process over the real SQLite ledger, exactly as the
gateway runs it (``gateway.burns.burner.Burner``), with ``LANES`` lanes, batches of the signer's cap and
``burn_confirmations = 1`` (an intent is settled once its burn is in a block).

``INTENTS`` card-path spends (purchase, hold, post) are written first; then the burner starts and
drains them. Figures:

- ``settled_per_s_absolute`` — intents settled per second from the first settlement on the lanes to
  the last (the split of the treasury into lanes is the first batch and is excluded), with the
  absolute goal of 1,000/s (baseline fixed at 1, as the signer bench does for its absolute goal);
- ``settled_per_s_total`` — the same over the whole run, split included (no goal);
- ``ledger_cost_per_intent_vs_post`` — the burner's ledger-side time per intent (its SQLite reads and
  writes, the outbox reads and ``settle_burn``, all timed around the awaits) over the card path's own
  ``post`` per intent (timed while writing the spends): lower is better, no goal.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from common.logging import configure_logging
from gateway.burns.burner import Burner
from gateway.burns.signer import GrpcSigner
from gateway.burns.treasury import TreasuryGuard
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from gateway.web3.chain import GrpcChain
from tests.gateway.burns.conftest import _identity
from tests.signer.helpers import SignerProcess, provision, short_tmp
from tests.support.devnet_fixture import DevnetProcess
from tests.support.indexer_fixture import IndexerProcess

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

T = TypeVar("T")
LANES = 16
INTENTS = 8_000
GOAL_PER_S = 1_000.0
RUN_TIMEOUT_S = 240.0


class Timed:
    """Sums the time spent awaiting the wrapped object's coroutine methods."""

    def __init__(self, inner: Any, names: tuple[str, ...]) -> None:
        self._inner, self._names, self.seconds = inner, names, 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._names:
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


async def _spend(ledger: SqliteLedger, count: int) -> tuple[float, list[str]]:
    """``count`` card-path spends; returns the seconds spent in ``post`` and the ids."""
    user = f"bench-{uuid.uuid4().hex[:8]}"
    await ledger.credit_purchase(user_id=user, credits=count, key=f"bench:{user}")
    ids, post_s = [], 0.0
    for i in range(count):
        gen = f"bench-{user}-{i:06d}"
        await ledger.hold(user_id=user, generation_id=gen, timeout_s=3600)
        start = time.perf_counter()
        await ledger.post(gen)
        post_s += time.perf_counter() - start
        ids.append(gen)
    return post_s, ids


async def _settled(db: Database) -> int:
    return int(await db.read(lambda c: c.execute("SELECT COUNT(*) FROM burn_settlements").fetchone()[0]))


async def _until(check: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def _drain(settings: GatewaySettings, db: Database, chain: GrpcChain, signer: GrpcSigner,
                 report: Reporter) -> None:
    ledger = SqliteLedger(db)
    post_s, ids = await _spend(ledger, INTENTS)
    timed_db = Timed(db, ("read", "write"))
    timed_ledger = Timed(ledger, ("outbox", "settle_burn"))
    burner = Burner(settings, timed_db, timed_ledger, chain, signer,  # type: ignore[arg-type]
                    TreasuryGuard(min_tokens=0, min_lovelace=0))
    task = asyncio.create_task(burner.run())
    started = time.monotonic()
    try:
        await _until(lambda: _settled(db), lambda n: n > 0, RUN_TIMEOUT_S)  # the split batch
        first_n, first_t = await _settled(db), time.monotonic()
        end_n = await _until(lambda: _settled(db), lambda n: n >= len(ids), RUN_TIMEOUT_S)
        end_t = time.monotonic()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    steady = (end_n - first_n) / max(end_t - first_t, 1e-9)
    note = (f"{LANES} lanes, batch {min(settings.burn_batch_max, 100)}, 1 s blocks, {end_n}/{len(ids)} settled"
            f" in {end_t - started:.1f} s")
    report.figure("settled_per_s_absolute", steady, "intents/s", baseline=1.0, goal=GOAL_PER_S, note=note)
    report.figure("settled_per_s_total", end_n / (end_t - started), "intents/s", note=note)
    burner_per_intent = (timed_db.seconds + timed_ledger.seconds) / max(end_n, 1)
    report.figure("ledger_cost_per_intent_vs_post", burner_per_intent * 1e6, "us/intent",
                  baseline=post_s / len(ids) * 1e6, higher_is_better=False,
                  note="burner's SQLite + outbox + settle_burn time per intent / the card path's post per intent")


def run(report: Reporter) -> None:
    configure_logging("gateway", level="WARNING", json=False)  # one line per batch would drown the table
    tmp = Path(tempfile.mkdtemp(prefix="bench-burns-"))
    devnet = DevnetProcess(block_time=1.0).start()
    workdir = short_tmp()
    prov = provision("file", workdir, "mint", extra={"SIGNER_SYSTEM_START": devnet.info()["system_start"],
                                                     "SIGNER_MAX_TOKENS_PER_DAY": "1000000",
                                                     "SIGNER_LOG_LEVEL": "WARNING"})
    signer_proc = SignerProcess(prov.env, workdir)
    indexer: IndexerProcess | None = None
    db: Database | None = None
    try:
        signer_proc.wait_ready()
        identity = _identity(signer_proc.target)
        unit = f"{identity.asset.policy_id}.{identity.asset.asset_name}"
        for _ in range(2):
            devnet.fund(identity.custodial_address, 1_000_000_000, {unit: INTENTS})
        indexer = IndexerProcess(ogmios_url=devnet.ogmios_url, kupo_url=devnet.kupo_url,
                                 db_path=tmp / "indexer" / "indexer.sqlite3",
                                 env={"INDEXER_TREASURY_ADDRESS": identity.custodial_address,
                                      "INDEXER_POLICY_ID": identity.asset.policy_id,
                                      "INDEXER_ASSET_NAME": identity.asset.asset_name,
                                      "INDEXER_LOG_LEVEL": "WARNING"}).start()
        settings = GatewaySettings(state_dir=tmp / "gateway", burn_enabled=True, burn_lanes=LANES,
                                   burn_batch_max=100, burn_batch_wait_s=0.0, burn_confirmations=1,
                                   burn_poll_interval_s=0.2, burn_retry_max_s=2.0)
        db = Database(settings.sqlite_path)
        db.migrate(all_migrations())
        chain = GrpcChain(indexer.grpc_target)
        signer = GrpcSigner(signer_proc.target)

        async def main() -> None:
            try:
                await _drain(settings, db, chain, signer, report)
            finally:
                await chain.close()
                await signer.close()

        asyncio.run(main())
    finally:
        if db is not None:
            db.close()
        if indexer is not None:
            indexer.close()
        signer_proc.stop()
        devnet.close()
