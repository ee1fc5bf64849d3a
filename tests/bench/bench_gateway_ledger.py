"""Ledger benchmark (``make bench BENCH=gateway_ledger``): hold+post pairs/s, DESIGN §10's goal ≥ 0.5.

The measured path is the ledger as the gateway uses it: an asyncio caller awaiting ``hold`` then
``post`` (argument checks, the hop to the writer thread or the pool, one transaction each, the outcome
objects, the metrics). The baseline is a bare loop on the caller's own thread doing the same writes:
the same schema and triggers (the ledger's migrations), the same pragmas or server, the same statements
(imported from ``gateway.credits.sqlite_tx`` / ``postgres_tx``), two transactions per pair.

This box's disk is shared with other work, so fsync latency swings by 10× within seconds. Both sides
therefore run in alternating slices of ``SLICE_S`` (``SLICES`` each, ledger and baseline back to
back on the same open database), and each figure is total pairs / total time of its slices: both
sides see the same disk, slice by slice.

Figures:

- ``hold_post_pairs_per_s`` — SqliteLedger, one caller, ``synchronous=FULL``: the goal figure;
- ``hold_post_pairs_per_s_16_callers`` — 16 concurrent callers on one SqliteLedger vs the same raw loop;
- ``hold_post_pairs_per_s_nosync`` — both sides ``synchronous=OFF``, so the fsync no longer hides the
  ledger's own CPU cost (not a production setting; reported to show the overhead honestly);
- ``pg_hold_post_pairs_per_s`` — PostgresLedger (psycopg async + pool) on a real local PostgreSQL
  (default ``fsync`` and ``synchronous_commit``), one caller, vs a bare synchronous psycopg loop
  (DESIGN §10, ≥ 0.5);
- ``pg_hold_post_pairs_per_s_16_callers`` — 16 callers, one user each (the row locks let them commit
  in parallel), vs the same one-connection raw loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.credits import postgres_tx as pg_tx
from gateway.credits import sqlite_tx as tx
from gateway.credits.accounts import BURN_OUTBOX, user_account
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.schema import MIGRATIONS
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

ROOT = Path(__file__).resolve().parents[2]
SLICE_S = 0.5
SLICES = 8
CALLERS = 16
GOAL = 0.5
CREDITS = 10**9


class Counter:
    """Pairs done and seconds spent, summed over slices."""

    def __init__(self) -> None:
        self.pairs, self.seconds = 0, 0.0

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0


# -- SQLite ----------------------------------------------------------------------------------------

def _sqlite_raw(path: Path, synchronous: str) -> Callable[[float], int]:
    conn = sqlite3.connect(str(path), isolation_level=None)
    for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    account, done = user_account("raw"), [0]

    def run(seconds: float) -> int:
        count, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            gen, now = f"raw-g{done[0]}", time.time()
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(tx.SQL_INSERT_ENTRY, ("hold:" + gen, "hold", account, BURN_OUTBOX, 1, None, now, "{}"))
            conn.execute(tx.SQL_RESERVE, (1, "raw", 1))
            conn.execute(tx.SQL_INSERT_HOLD, (gen, "raw", 1, cur.lastrowid, now, now + 300))
            conn.execute("COMMIT")
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(tx.SQL_POST_HOLD, (now, gen, now)).fetchall()
            cur = conn.execute(tx.SQL_INSERT_ENTRY, ("post:" + gen, "post", account, BURN_OUTBOX, 1, rows[0][3],
                                                     now, "{}"))
            conn.execute(tx.SQL_SPEND, (1, 1, "raw"))
            conn.execute(tx.SQL_INSERT_INTENT, (gen, "raw", 1, cur.lastrowid, now))
            conn.execute("COMMIT")
            count += 1
            done[0] += 1
        return count

    return run


async def _ledger_slice(ledger: LedgerService, users: list[str], tag: str, seconds: float) -> int:
    count, deadline = 0, time.perf_counter() + seconds

    async def caller(worker: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < deadline:
            gen = f"{tag}-w{worker}-g{i}"
            await ledger.hold(user_id=users[worker], generation_id=gen, timeout_s=300)
            await ledger.post(gen)
            count += 1
            i += 1

    await asyncio.gather(*(caller(w) for w in range(len(users))))
    return count


def _alternate(ledger_slice: Callable[[int, float], int], raw_slice: Callable[[float], int]) -> tuple[float, float]:
    ledger, raw = Counter(), Counter()
    for i in range(SLICES):
        for counter, run in ((raw, raw_slice), (ledger, lambda s, i=i: ledger_slice(i, s))):
            start = time.perf_counter()
            counter.pairs += run(SLICE_S)
            counter.seconds += time.perf_counter() - start
    return ledger.rate, raw.rate


def sqlite_rates(directory: Path, synchronous: str, callers: int) -> tuple[float, float]:
    path = directory / f"ledger-{synchronous}-{callers}.sqlite3"
    db = Database(path)
    db.migrate(MIGRATIONS)
    db._writer.execute(f"PRAGMA synchronous={synchronous}")  # bench only: the nosync comparison
    ledger = SqliteLedger(db)
    users = [f"u{w}" if callers > 1 else "u" for w in range(callers)]

    async def fund() -> None:
        for user in {*users, "raw"}:  # the raw loop's user is funded by a real purchase entry too
            await ledger.credit_purchase(user_id=user, credits=CREDITS, key=f"bench:{user}")

    asyncio.run(fund())
    raw = _sqlite_raw(path, synchronous)
    try:
        return _alternate(lambda i, s: asyncio.run(_ledger_slice(ledger, users, f"s{i}", s)), raw)
    finally:
        _check_reconciles(ledger)
        db.close()


def _check_reconciles(ledger: LedgerService) -> None:
    report = asyncio.run(ledger.reconcile())
    if not report.ok:
        raise RuntimeError(f"the bench left a ledger that does not reconcile: {report.breaches[:3]}")


# -- PostgreSQL ------------------------------------------------------------------------------------

def _pg_raw(url: str) -> tuple[Callable[[float], int], Any]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    account, done = user_account("raw"), [0]

    def run(seconds: float) -> int:
        count, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            gen, now = f"raw-g{done[0]}", time.time()
            with conn.transaction():
                conn.execute(pg_tx.SQL_LOCK_ACCOUNT, ("raw",)).fetchone()
                row = conn.execute(pg_tx.SQL_INSERT_ENTRY, ("hold:" + gen, "hold", account, BURN_OUTBOX, 1, None,
                                                            now, "{}")).fetchone()
                conn.execute(pg_tx.SQL_RESERVE, (1, "raw"))
                conn.execute(pg_tx.SQL_INSERT_HOLD, (gen, "raw", 1, row[0] if row else None, now, now + 300))
            now = time.time()
            with conn.transaction():
                held = conn.execute(pg_tx.SQL_POST_HOLD, (now, gen, now)).fetchone()
                assert held is not None
                entry = conn.execute(pg_tx.SQL_INSERT_ENTRY, ("post:" + gen, "post", account, BURN_OUTBOX, 1,
                                                              held[3], now, "{}")).fetchone()
                conn.execute(pg_tx.SQL_SPEND, (1, 1, "raw"))
                conn.execute(pg_tx.SQL_INSERT_INTENT, (gen, "raw", 1, entry[0] if entry else None, now))
            count += 1
            done[0] += 1
        return count

    return run, conn


def pg_rates(url: str, callers: int) -> tuple[float, float]:
    users = [f"u{w}" if callers > 1 else "u" for w in range(callers)]
    loop = asyncio.new_event_loop()  # one loop for every slice: the pool belongs to it
    ledger = loop.run_until_complete(PostgresLedger.open(url, max_size=max(2, callers)))

    async def fund() -> None:
        for user in {*users, "raw"}:  # the raw loop's user is funded by a real purchase entry too
            await ledger.credit_purchase(user_id=user, credits=CREDITS, key=f"bench:{user}")

    loop.run_until_complete(fund())
    raw, conn = _pg_raw(url)
    try:
        return _alternate(lambda i, s: loop.run_until_complete(_ledger_slice(ledger, users, f"p{i}", s)), raw)
    finally:
        report = loop.run_until_complete(ledger.reconcile())
        loop.run_until_complete(ledger.close())
        loop.close()
        conn.close()
        if not report.ok:
            raise RuntimeError(f"the bench left a ledger that does not reconcile: {report.breaches[:3]}")


def _pg_figures(report: Reporter) -> None:
    from tests.gateway.credits.pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        ledger, raw = pg_rates(server.new_schema(), 1)
        report.figure("pg_hold_post_pairs_per_s", ledger, "pairs/s", baseline=raw, goal=GOAL,
                      note="PostgresLedger (psycopg async + pool) hold+post, one caller, vs a bare sync psycopg loop"
                           f" with the same statements and transactions on the same local server; {SLICES} alternating"
                           f" {SLICE_S:g} s slices each")
        ledger, raw = pg_rates(server.new_schema(), CALLERS)
        report.figure(f"pg_hold_post_pairs_per_s_{CALLERS}_callers", ledger, "pairs/s", baseline=raw,
                      note=f"{CALLERS} concurrent callers, one user each (row locks: parallel commits), vs the"
                           " one-connection raw loop")
    finally:
        server.stop()


def run(report: Reporter) -> None:
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=ROOT / "var") as tmp:
        directory = Path(tmp)
        ledger, raw = sqlite_rates(directory, "FULL", 1)
        report.figure("hold_post_pairs_per_s", ledger, "pairs/s", baseline=raw, goal=GOAL,
                      note="SqliteLedger hold+post, one caller, synchronous=FULL, vs a bare sqlite3 loop doing the"
                           " same statements in the same 2 transactions per pair on the same database;"
                           f" {SLICES} alternating {SLICE_S:g} s slices each")
        ledger, raw = sqlite_rates(directory, "FULL", CALLERS)
        report.figure(f"hold_post_pairs_per_s_{CALLERS}_callers", ledger, "pairs/s", baseline=raw, goal=GOAL,
                      note=f"{CALLERS} concurrent asyncio callers (one user each) on one SqliteLedger (one writer"
                           " thread) vs the one-thread raw loop")
        ledger, raw = sqlite_rates(directory, "OFF", 1)
        report.figure("hold_post_pairs_per_s_nosync", ledger, "pairs/s", baseline=raw,
                      note="both sides synchronous=OFF: no fsync, so the ratio is the ledger's CPU overhead"
                           " (thread hop, checks, objects, metrics); not a production setting")
    _pg_figures(report)
