"""Concurrency: holds racing for the last credits, from one process and from several connections at
once (SQLite's file lock is what separate processes share; PostgreSQL replicas with their own pools),
and post racing the hold's expiry on another connection's sweeper."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.credits.ledger import HoldExpired, InsufficientCredits
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.gateway.credits.conftest import MakeLedger, open_db
from tests.gateway.credits.sim import Model, apply_to_ledger, next_op


async def test_50_concurrent_holds_on_10_credits_exactly_10_succeed(ledger: LedgerService) -> None:
    await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    results = await asyncio.gather(
        *(ledger.hold(user_id="u1", generation_id=f"g{i}", timeout_s=60) for i in range(50)),
        return_exceptions=True,
    )
    held = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(held), len(refused)) == (10, 40)
    balance = await ledger.balance("u1")
    assert (balance.pending, balance.available) == (10, 0)
    await asyncio.gather(*(ledger.post(h.generation_id) for h in held))
    assert (await ledger.balance("u1")).available == 0
    assert len(await ledger.outbox()) == 10
    assert (await ledger.reconcile()).ok


def _holds_on_own_connection(path: Path, worker: int, start: threading.Barrier,
                             results: list[str]) -> None:
    """One 'replica': its own Database (own writer connection) on the same file."""
    async def run() -> None:
        db = Database(path)
        ledger = SqliteLedger(db)
        start.wait()
        try:
            for i in range(10):
                try:
                    hold = await ledger.hold(user_id="u1", generation_id=f"w{worker}-{i}", timeout_s=60)
                    await ledger.post(hold.generation_id)
                    results.append("posted")
                except InsufficientCredits:
                    results.append("refused")
        finally:
            db.close()
    asyncio.run(run())


async def test_holds_from_five_connections_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    db = open_db(path)
    ledger = SqliteLedger(db)
    await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    start, results = threading.Barrier(5), list[str]()
    threads = [threading.Thread(target=_holds_on_own_connection, args=(path, w, start, results)) for w in range(5)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [t.join(120) for t in threads])
    assert sorted(results).count("posted") == 10 and len(results) == 50
    balance = await ledger.balance("u1")
    assert (balance.spent, balance.pending, balance.available) == (10, 0, 0)
    report = await ledger.reconcile()
    assert report.ok, report.breaches
    db.close()


def _sweep_until(path: Path, deadline: float) -> None:
    db = Database(path)
    ledger = SqliteLedger(db)

    async def run() -> None:
        while time.time() < deadline:
            await ledger.void_expired()
    try:
        asyncio.run(run())
    finally:
        db.close()


async def test_post_racing_expiry_resolves_each_hold_once(tmp_path: Path) -> None:
    """Holds that expire while a second connection sweeps and this one posts: each ends posted
    (strictly before its expiry) or voided as expired, never both; the sweeper and late posts agree."""
    path = tmp_path / "race.sqlite3"
    db = open_db(path)
    ledger = SqliteLedger(db)
    await ledger.credit_purchase(user_id="u1", credits=200, key="stripe:pi:1")
    holds = [await ledger.hold(user_id="u1", generation_id=f"g{i}", timeout_s=0.02 + 0.002 * i) for i in range(60)]
    sweeper = threading.Thread(target=_sweep_until, args=(path, time.time() + 1.0))
    sweeper.start()
    outcomes = {"posted": 0, "expired": 0}
    for hold in holds:
        try:
            posted = await ledger.post(hold.generation_id)
            assert posted.resolved_at is not None and posted.resolved_at < posted.expires_at
            outcomes["posted"] += 1
        except HoldExpired:
            outcomes["expired"] += 1
    await asyncio.to_thread(sweeper.join, 60)
    assert sum(outcomes.values()) == 60
    final = [await ledger.get_hold(h.generation_id) for h in holds]
    assert sum(1 for h in final if h and h.state == "posted") == outcomes["posted"]
    assert all(h and (h.state == "posted" or h.reason == "expired") for h in final)
    balance = await ledger.balance("u1")
    assert (balance.spent, balance.pending) == (outcomes["posted"], 0)
    report = await ledger.reconcile()
    assert report.ok, report.breaches
    db.close()


# -- PostgreSQL: several "replicas" (own pools) on one database, truly concurrent transactions ---------

async def _replicas(first: PostgresLedger, count: int) -> list[PostgresLedger]:
    return [await PostgresLedger.open(first.url, run_migrations=False, max_size=4) for _ in range(count)]


async def test_postgres_replicas_racing_for_10_credits_never_overspend(make_ledger: MakeLedger) -> None:
    first = await make_ledger("postgres")
    assert isinstance(first, PostgresLedger)
    await first.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    replicas = await _replicas(first, 5)
    try:
        async def attempt(replica: PostgresLedger, gen: str) -> str:
            try:
                await replica.hold(user_id="u1", generation_id=gen, timeout_s=60)
            except InsufficientCredits:
                return "refused"
            await replica.post(gen)
            return "posted"

        results = await asyncio.gather(*(attempt(replicas[i % 5], f"g{i}") for i in range(50)))
        # the same 50 generations again through other replicas: replays, never a second spend
        again = await asyncio.gather(*(replicas[(i + 1) % 5].hold(user_id="u1", generation_id=f"g{i}", timeout_s=60)
                                       for i in range(50) if results[i] == "posted"))
    finally:
        for replica in replicas:
            await replica.close()
    assert results.count("posted") == 10 and results.count("refused") == 40
    assert all(h.state == "posted" for h in again)
    balance = await first.balance("u1")
    assert (balance.spent, balance.pending, balance.available) == (10, 0, 0)
    report = await first.reconcile()
    assert report.ok, report.breaches


async def test_postgres_post_racing_a_sweeping_replica(make_ledger: MakeLedger) -> None:
    first = await make_ledger("postgres")
    assert isinstance(first, PostgresLedger)
    ledger = PostgresLedger(first.url)  # real clock (the fixture's clock does not move)
    [sweeper] = await _replicas(first, 1)
    await ledger.credit_purchase(user_id="u1", credits=200, key="stripe:pi:1")
    holds = [await ledger.hold(user_id="u1", generation_id=f"g{i}", timeout_s=0.02 + 0.002 * i) for i in range(40)]
    deadline = time.time() + 1.0

    async def sweep() -> None:
        while time.time() < deadline:
            await sweeper.void_expired()

    async def post_all() -> dict[str, int]:
        outcomes = {"posted": 0, "expired": 0}
        for hold in holds:
            try:
                posted = await ledger.post(hold.generation_id)
                assert posted.resolved_at is not None and posted.resolved_at < posted.expires_at
                outcomes["posted"] += 1
            except HoldExpired:
                outcomes["expired"] += 1
        return outcomes

    try:
        outcomes, _ = await asyncio.gather(post_all(), sweep())
        assert sum(outcomes.values()) == 40
        balance = await ledger.balance("u1")
        assert (balance.spent, balance.pending) == (outcomes["posted"], 0)
        report = await ledger.reconcile()
        assert report.ok, report.breaches
    finally:  # every pool this test opened: one left open hangs the event loop's teardown
        await sweeper.close()
        await ledger.close()


# -- chaos: random operations from several connections at once, invariants at the end ----------------

async def _chaos_ledgers(backend: str, make_ledger: MakeLedger, tmp_path: Path) -> tuple[LedgerService, list[Any]]:
    first = await make_ledger(backend)
    if isinstance(first, PostgresLedger):
        return first, [first, *(await _replicas(first, 2))]
    assert isinstance(first, SqliteLedger)
    return first, [first, *(SqliteLedger(Database(first.db.path)) for _ in range(2))]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_random_concurrent_operations_keep_every_invariant(backend: str, make_ledger: MakeLedger,
                                                                tmp_path: Path) -> None:
    """Six workers on three connections (pools) draw seeded random operations — colliding keys and
    generation ids included, holds expiring within milliseconds, sweeps — and run them at once on the
    real clock. Outcomes are whatever the races decide; no operation may fail with anything but a
    ledger result code, and the ledger must reconcile afterwards."""
    first, ledgers = await _chaos_ledgers(backend, make_ledger, tmp_path)
    real_clock = [SqliteLedger(ledger.db) if isinstance(ledger, SqliteLedger) else PostgresLedger(ledger.url)
                  for ledger in ledgers]  # the fixture's clock is frozen; these use time.time
    codes: dict[str, int] = {}

    async def worker(index: int) -> None:
        rng, model = random.Random(1000 + index), Model()
        for step in range(80):
            op = next_op(rng, model, step)
            model.apply(op)  # only to draw plausible next operations; races decide the real outcomes
            if "timeout_s" in op:
                op["timeout_s"] = op["timeout_s"] / 1000  # expire within 5-60 ms, while others work
            outcome = await apply_to_ledger(real_clock[index % len(real_clock)], op)
            key = outcome[1] if outcome[0] == "error" else f"{op['op']}:ok"
            codes[key] = codes.get(key, 0) + 1

    workers = [asyncio.create_task(worker(i)) for i in range(6)]
    try:
        await asyncio.gather(*workers)
        await first.void_expired(now=time.time() + 3600)
        report = await first.reconcile()
    finally:
        for task in workers:  # a failed worker must not leave the others running into closed pools
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for ledger in real_clock + ledgers[1:]:  # every pool this test opened (an open one hangs loop teardown)
            if isinstance(ledger, PostgresLedger):
                await ledger.close()
            elif ledger.db is not first.db:  # type: ignore[attr-defined]
                ledger.db.close()  # type: ignore[attr-defined]
    assert report.ok, report.breaches
    assert codes.get("hold:ok", 0) > 0 and codes.get("post:ok", 0) > 0, codes
    assert report.totals["holds_pending"] == 0
