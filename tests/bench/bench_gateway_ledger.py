"""Ledger benchmark (``make bench BENCH=gateway_ledger``): hold+post pairs/s, DESIGN §10's goal ≥ 0.5.

The measured path is ``SqliteLedger`` as the gateway uses it: an asyncio caller awaiting ``hold`` then
``post`` (argument checks, the hop to the single writer thread, one ``BEGIN IMMEDIATE`` transaction
each, the outcome objects, the metrics). The baseline is a bare ``sqlite3`` loop on the caller's own
thread doing the same writes: the same schema and triggers (the ledger's migrations), the same pragmas
(WAL, ``synchronous=FULL``, foreign keys), the same statements (imported from
``gateway.credits.sqlite_tx``), two transactions per pair. Both run on the same disk in the same run,
in interleaved rounds (median of ``ROUNDS``).

Figures:

- ``hold_post_pairs_per_s`` — one caller, durable (FULL): the goal figure;
- ``hold_post_pairs_per_s_16_callers`` — 16 concurrent callers on the one ledger vs the same raw loop;
- ``hold_post_pairs_per_s_nosync`` — both sides with ``synchronous=OFF``, so the fsync no longer hides
  the ledger's own CPU cost (not a production setting; reported to show the overhead honestly).
- ``pg_hold_post_pairs_per_s`` — ``PostgresLedger`` (psycopg async, pool) on a real local PostgreSQL
  (default ``fsync``/``synchronous_commit``), one caller, vs a bare synchronous psycopg loop sending
  the same statements in the same two transactions per pair on the same server (DESIGN §10, ≥ 0.5);
- ``pg_hold_post_pairs_per_s_16_callers`` — 16 concurrent callers, each its own user (the row locks
  let them commit in parallel), vs the same one-connection raw loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.credits import postgres_tx as pg_tx
from gateway.credits import sqlite_tx as tx
from gateway.credits.accounts import BURN_OUTBOX, user_account
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.schema import MIGRATIONS
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

ROOT = Path(__file__).resolve().parents[2]
RUN_S = 2.0
ROUNDS = 3
CALLERS = 16
GOAL = 0.5
CREDITS = 10**9


def _fresh_db(directory: Path, name: str, synchronous: str) -> Database:
    db = Database(directory / f"{name}.sqlite3")
    db.migrate(MIGRATIONS)
    db._writer.execute(f"PRAGMA synchronous={synchronous}")  # bench only: the nosync comparison
    return db


def raw_pairs_per_s(directory: Path, name: str, synchronous: str) -> float:
    db = _fresh_db(directory, name, synchronous)
    db.close()
    conn = sqlite3.connect(str(directory / f"{name}.sqlite3"), isolation_level=None)
    for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("INSERT INTO credit_accounts (user_id, credits_posted, created_at) VALUES ('u', ?, 0)", (CREDITS,))
    account, count, start = user_account("u"), 0, time.perf_counter()
    while time.perf_counter() - start < RUN_S:
        gen, now = f"g{count}", time.time()
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(tx.SQL_INSERT_ENTRY, ("hold:" + gen, "hold", account, BURN_OUTBOX, 1, None, now, "{}"))
        entry_id = cur.lastrowid
        conn.execute(tx.SQL_RESERVE, (1, "u", 1))
        conn.execute(tx.SQL_INSERT_HOLD, (gen, "u", 1, entry_id, now, now + 300))
        conn.execute("COMMIT")
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(tx.SQL_POST_HOLD, (now, gen, now)).fetchall()
        cur = conn.execute(tx.SQL_INSERT_ENTRY, ("post:" + gen, "post", account, BURN_OUTBOX, 1, rows[0][3], now, "{}"))
        conn.execute(tx.SQL_SPEND, (1, 1, "u"))
        conn.execute(tx.SQL_INSERT_INTENT, (gen, "u", 1, cur.lastrowid, now))
        conn.execute("COMMIT")
        count += 1
    rate = count / (time.perf_counter() - start)
    conn.close()
    return rate


async def _ledger_pairs(directory: Path, name: str, synchronous: str, callers: int) -> float:
    db = _fresh_db(directory, name, synchronous)
    ledger = SqliteLedger(db)
    await ledger.credit_purchase(user_id="u", credits=CREDITS, key="bench:credits")
    count, deadline = 0, time.perf_counter() + RUN_S

    async def caller(worker: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < deadline:
            gen = f"w{worker}-g{i}"
            await ledger.hold(user_id="u", generation_id=gen, timeout_s=300)
            await ledger.post(gen)
            count += 1
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller(w) for w in range(callers)))
    rate = count / (time.perf_counter() - start)
    report = await ledger.reconcile()
    db.close()
    if not report.ok:
        raise RuntimeError(f"the bench left a ledger that does not reconcile: {report.breaches[:3]}")
    return rate


def ledger_pairs_per_s(directory: Path, name: str, synchronous: str, callers: int = 1) -> float:
    return asyncio.run(_ledger_pairs(directory, name, synchronous, callers))


def _median_pair(directory: Path, synchronous: str, callers: int) -> tuple[float, float]:
    ledger_rates, raw_rates = [], []
    for r in range(ROUNDS):
        raw_rates.append(raw_pairs_per_s(directory, f"raw-{synchronous}-{callers}-{r}", synchronous))
        ledger_rates.append(ledger_pairs_per_s(directory, f"ledger-{synchronous}-{callers}-{r}", synchronous, callers))
    return statistics.median(ledger_rates), statistics.median(raw_rates)


def raw_pg_pairs_per_s(url: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO credit_accounts (user_id, credits_posted, created_at) VALUES ('raw', %s, 0)",
                     (CREDITS,))
        account, count, start = user_account("raw"), 0, time.perf_counter()
        while time.perf_counter() - start < RUN_S:
            gen, now = f"raw-g{count}", time.time()
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
        return count / (time.perf_counter() - start)


async def _pg_ledger_pairs(url: str, callers: int, tag: str) -> float:
    ledger = await PostgresLedger.open(url, run_migrations=False, max_size=max(2, callers))
    try:
        users = [f"{tag}-u{w}" if callers > 1 else f"{tag}-u" for w in range(callers)]
        for user in set(users):
            await ledger.credit_purchase(user_id=user, credits=CREDITS, key=f"bench:{user}")
        count, deadline = 0, time.perf_counter() + RUN_S

        async def caller(worker: int) -> None:
            nonlocal count
            i = 0
            while time.perf_counter() < deadline:
                gen = f"{tag}-w{worker}-g{i}"
                await ledger.hold(user_id=users[worker], generation_id=gen, timeout_s=300)
                await ledger.post(gen)
                count += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(w) for w in range(callers)))
        return count / (time.perf_counter() - start)
    finally:
        await ledger.close()


def _pg_figures(report: Reporter) -> None:
    from tests.gateway.credits.pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        ledger_rates: dict[int, list[float]] = {1: [], CALLERS: []}
        raw_rates: list[float] = []
        for r in range(ROUNDS):
            url = server.new_schema()
            asyncio.run(_migrate_pg(url))
            raw_rates.append(raw_pg_pairs_per_s(url))
            for callers in ledger_rates:
                ledger_rates[callers].append(asyncio.run(_pg_ledger_pairs(url, callers, f"r{r}c{callers}")))
        raw = statistics.median(raw_rates)
        report.figure("pg_hold_post_pairs_per_s", statistics.median(ledger_rates[1]), "pairs/s", baseline=raw,
                      goal=GOAL, note="PostgresLedger (psycopg async + pool) hold+post, one caller, vs a bare sync"
                                      " psycopg loop with the same statements and transactions, same local server")
        report.figure(f"pg_hold_post_pairs_per_s_{CALLERS}_callers", statistics.median(ledger_rates[CALLERS]),
                      "pairs/s", baseline=raw, note=f"{CALLERS} concurrent callers, one user each (row locks:"
                                                    " parallel commits), vs the one-connection raw loop")
    finally:
        server.stop()


async def _migrate_pg(url: str) -> None:
    ledger = await PostgresLedger.open(url, max_size=1)
    await ledger.close()


def run(report: Reporter) -> None:
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-", dir=ROOT / "var") as tmp:
        directory = Path(tmp)
        ledger, raw = _median_pair(directory, "FULL", 1)
        report.figure("hold_post_pairs_per_s", ledger, "pairs/s", baseline=raw, goal=GOAL,
                      note=f"SqliteLedger hold+post, one caller, synchronous=FULL, vs a bare sqlite3 loop doing the"
                           f" same statements in the same 2 transactions per pair; median of {ROUNDS} x {RUN_S:g} s")
        ledger, raw = _median_pair(directory, "FULL", CALLERS)
        report.figure(f"hold_post_pairs_per_s_{CALLERS}_callers", ledger, "pairs/s", baseline=raw, goal=GOAL,
                      note=f"{CALLERS} concurrent asyncio callers on one SqliteLedger (one writer thread) vs the"
                           " one-thread raw loop")
        ledger, raw = _median_pair(directory, "OFF", 1)
        report.figure("hold_post_pairs_per_s_nosync", ledger, "pairs/s", baseline=raw,
                      note="both sides synchronous=OFF: no fsync, so the ratio is the ledger's CPU overhead"
                           " (thread hop, checks, objects, metrics); not a production setting")
    _pg_figures(report)
