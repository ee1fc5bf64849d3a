"""Seeded simulation (TigerBeetle style): random operations with duplicates, reorderings, clock jumps
and SIGKILL crashes, checked against a reference model and ``reconcile()`` after every step.

A failing seed is printed in the assertion; ``CREDITS_SIM_SEED=<seed>`` replays exactly that seed
(``CREDITS_SIM_STEPS`` makes the run longer).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.credits.ledger import Hold
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.gateway.credits.conftest import FakeClock, MakeLedger, open_db
from tests.gateway.credits.sim import USERS, Model, apply_to_ledger, next_op

ROOT = Path(__file__).resolve().parents[3]
REPLAY_SEED = os.environ.get("CREDITS_SIM_SEED")
SEEDS = [int(REPLAY_SEED)] if REPLAY_SEED else [1, 2, 3, 4]
PG_SEEDS = SEEDS if REPLAY_SEED else SEEDS[:2]  # a PostgreSQL step costs a few network round trips
CRASH_SEEDS = [int(REPLAY_SEED)] if REPLAY_SEED else [11, 12, 13]
STEPS = int(os.environ.get("CREDITS_SIM_STEPS", "200"))


def _state(db: Database) -> dict[str, Any]:
    """Balances, holds and outbox in one read snapshot, in the model's shapes (SQLite, after a crash)."""
    def read(conn: Any) -> dict[str, Any]:
        holds = {r[0]: tuple(r) for r in conn.execute(
            "SELECT generation_id, user_id, amount, state, reason, created_at, expires_at, resolved_at"
            " FROM credit_holds")}
        outbox = [r[0] for r in conn.execute(
            "SELECT i.generation_id FROM burn_intents i WHERE NOT EXISTS (SELECT 1 FROM burn_settlements s"
            " WHERE s.generation_id = i.generation_id) ORDER BY i.seq")]
        return {"holds": holds, "outbox": outbox}
    return db.read_sync(read)


def _hold_row(hold: Hold | None) -> tuple[Any, ...] | None:
    if hold is None:
        return None
    return (hold.generation_id, hold.user_id, hold.amount, hold.state, hold.reason, hold.created_at,
            hold.expires_at, hold.resolved_at)


def _model_state(model: Model) -> dict[str, Any]:
    return {"holds": {g: _hold_row(h) for g, h in model.holds.items()}, "outbox": model.outbox()}


async def _check(ledger: LedgerService, model: Model, where: str, gens: list[str]) -> None:
    """Reconcile, every balance, the outbox, and the holds named in ``gens``, against the model."""
    report = await ledger.reconcile()
    assert report.ok, f"{where}: reconcile breaches {report.breaches}"
    for user in USERS:
        assert await ledger.balance(user) == model.balance(user), f"{where}: balance of {user}"
    assert [i.generation_id for i in await ledger.outbox(limit=10_000)] == model.outbox(), f"{where}: outbox"
    for gen in gens:
        assert _hold_row(await ledger.get_hold(gen)) == _hold_row(model.holds.get(gen)), f"{where}: hold {gen}"


def _ops(seed: int, steps: int) -> list[dict[str, Any]]:
    """The seed's operation list; each op carries the clock reading it runs at."""
    rng, model, ops = random.Random(seed), Model(), []
    for step in range(steps):
        op = next_op(rng, model, step)
        op["now"] = model.now
        model.apply(op)
        ops.append(op)
    return ops


@pytest.mark.parametrize(("backend", "seed"), [("sqlite", s) for s in SEEDS] + [("postgres", s) for s in PG_SEEDS])
async def test_random_operations_match_the_model(backend: str, seed: int, make_ledger: MakeLedger,
                                                 clock: FakeClock) -> None:
    ledger = await make_ledger(backend)
    model = Model(now=clock.now)
    for step, op in enumerate(_ops(seed, STEPS)):
        where = f"seed {seed} step {step} op {op} (replay: CREDITS_SIM_SEED={seed})"
        clock.now = op["now"]
        real = await apply_to_ledger(ledger, op)
        expected = model.apply(op)
        clock.now = model.now
        assert json.loads(json.dumps(real)) == json.loads(json.dumps(expected)), where
        every_hold = step % 50 == 49 or step == STEPS - 1
        await _check(ledger, model, where, sorted(model.holds) if every_hold else [op["gen"]] if "gen" in op else [])


def _crash_plan(rng: random.Random, ops: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    writes = [i for i, op in enumerate(ops) if op["op"] != "advance"]
    plan = []
    for index in sorted(rng.sample(writes, rounds)):
        if rng.random() < 0.3:
            plan.append({"index": index, "point": "after_commit"})
        else:
            plan.append({"index": index, "point": "statement", "statement": rng.randint(0, 6)})
    return plan


def _run_child(tmp_path: Path, spec: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    spec_path = tmp_path / "spec.json"
    acks_path = Path(spec["acks"])
    acks_path.write_text("")
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "tests.gateway.credits.sim_child", str(spec_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in acks_path.read_text().splitlines() if line.strip()]
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.returncode, lines


CRASH_CASES = [("sqlite", s) for s in CRASH_SEEDS] + [("postgres", s) for s in CRASH_SEEDS[:2]]


@pytest.mark.parametrize(("backend", "seed"), CRASH_CASES)
async def test_sigkill_at_random_points_loses_nothing(backend: str, seed: int, tmp_path: Path,
                                                      make_ledger: MakeLedger) -> None:
    """A child process runs the seed's operations on the real ledger and SIGKILLs itself inside a write
    (before a statement, before COMMIT, after COMMIT); after each death the database must match the
    model of what was acknowledged (plus the interrupted write iff it committed), then the next child
    retries from the interrupted operation."""
    rng = random.Random(seed)
    ops = _ops(seed, 80)
    plan = _crash_plan(rng, ops, rounds=3)
    db_path = tmp_path / "crash.sqlite3"
    if backend == "sqlite":
        open_db(db_path).close()
        url = ""
    else:
        pg = await make_ledger("postgres")
        assert isinstance(pg, PostgresLedger)
        url = pg.url
    model, start = Model(), 0
    for crash in [*plan, None]:
        spec = {"db": str(db_path), "url": url, "backend": backend, "acks": str(tmp_path / "acks.jsonl"),
                "ops": ops, "start": start, "crash": crash}
        code, lines = _run_child(tmp_path, spec)
        where = f"{backend} seed {seed} crash {crash} (replay: CREDITS_SIM_SEED={seed})"
        phase = None
        for line in lines:
            if "crash" in line:
                phase = line["crash"]
                continue
            expected = model.apply(ops[line["i"]])
            assert json.loads(json.dumps(expected)) == line["outcome"], f"{where}: op {line['i']} {ops[line['i']]}"
            start = line["i"] + 1
        if crash is None:
            assert code == 0 and phase is None and start == len(ops), where
        else:
            assert code == -signal.SIGKILL and phase is not None, f"{where}: child was not killed ({code})"
            if phase in ("after_commit", "rolled_back"):
                model.apply(ops[start])  # it committed (or failed cleanly); the restart replays it
        await _check_after_crash(backend, db_path, url, model, f"{where}: after phase {phase}")


async def _check_after_crash(backend: str, db_path: Path, url: str, model: Model, where: str) -> None:
    if backend == "postgres":
        ledger = PostgresLedger(url, clock=lambda: model.now, max_size=2)
        try:
            await _check(ledger, model, where, sorted(model.holds))
        finally:
            await ledger.close()
        return
    db = Database(db_path)
    try:
        await _check(SqliteLedger(db, clock=lambda: model.now), model, where, [])
        assert _state(db) == _model_state(model), f"{where}: holds/outbox differ from the model"
    finally:
        db.close()
