"""``reconcile()`` finds each kind of breach written behind the ledger's back (both backends), and
``python -m gateway reconcile`` exits 0 / 1 / 2 with a text or JSON report."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import gateway.credits.cli  # noqa: F401  (registers the command)
from gateway.cli import COMMANDS
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.reconcile import EXTRA_CHECKS, CheckResult, register_check
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from tests.gateway.credits.conftest import MakeLedger
from tests.gateway.credits.raw import Raw

ROOT = Path(__file__).resolve().parents[3]


async def _populate(ledger: LedgerService) -> None:
    await ledger.credit_purchase(user_id="u1", credits=5, key="stripe:pi:1")
    await ledger.credit_purchase(user_id="u2", credits=1, key="stripe:pi:2")
    for gen in ("g1", "g2", "g3"):
        await ledger.hold(user_id="u1", generation_id=gen, timeout_s=60)
    await ledger.post("g1")
    await ledger.post("g2")
    await ledger.void("g3", reason="inference_failed")
    await ledger.hold(user_id="u1", generation_id="g4", timeout_s=60)
    await ledger.settle_burn(key="burn:1", generation_ids=["g1"], tx_id="tx1")
    await ledger.reverse_purchase(user_id="u2", credits=1, key="stripe:re:2")


@pytest.fixture
async def raw(ledger: LedgerService) -> AsyncIterator[Raw]:
    await _populate(ledger)
    conn = Raw(ledger)
    yield conn
    conn.close()


async def test_a_clean_ledger_reconciles_with_totals(ledger: LedgerService, raw: Raw) -> None:
    report = await ledger.reconcile()
    assert report.ok and report.breaches == []
    assert report.totals["credits_spent"] == 2
    assert (report.totals["credits_in_outbox"], report.totals["credits_settled"]) == (1, 1)
    assert (report.totals["holds_pending"], report.totals["holds_posted"], report.totals["holds_voided"]) == (1, 2, 1)
    assert report.totals["amount_reversal"] == 1


_ENTRY = ("INSERT INTO credit_entries (key, kind, debit_account, credit_account, amount, pending_id, created_at)"
          " VALUES (?, ?, ?, ?, ?, ?, 0)")
BREACHES = {
    "balance row edited": (["UPDATE credit_accounts SET credits_posted = credits_posted + 5 WHERE user_id = 'u1'"],
                           "balance row"),
    "purchase without balance": ([(_ENTRY, ("x1", "purchase", "stripe:clearing", "user:u1", 3, None))], "balance row"),
    "wrong accounts for kind": ([(_ENTRY, ("x2", "purchase", "user:u1", "refund", 1, None))], "wrong accounts"),
    "post without intent": ([
        (_ENTRY, ("post:g4", "post", "user:u1", "burn:outbox", 1, "(hold)")),
        "UPDATE credit_accounts SET debits_pending = debits_pending - 1, debits_spent = debits_spent + 1"
        " WHERE user_id = 'u1'",
    ], "burn intent"),
    "intent without post": ([
        "INSERT INTO burn_intents (generation_id, user_id, amount, entry_id, created_at) VALUES ('gx', 'u1', 1, 1, 0)",
    ], "burn intents"),
    "hold row without resolution entry": (["UPDATE credit_holds SET state = 'posted' WHERE generation_id = 'g4'"],
                                          "disagrees"),
    "overspent user": ([
        (_ENTRY, ("hold:gz", "hold", "user:u2", "burn:outbox", 4, None)),
        "INSERT INTO credit_holds (generation_id, user_id, amount, entry_id, created_at, expires_at)"
        " SELECT 'gz', 'u2', 4, id, 0, 9e9 FROM credit_entries WHERE key = 'hold:gz'",
        "UPDATE credit_accounts SET debits_pending = debits_pending + 4 WHERE user_id = 'u2'",
    ], "below zero"),
    "settlement without its entry amount": ([
        "INSERT INTO burn_settlements (generation_id, entry_id, tx_id, created_at)"
        " SELECT 'g2', id, 'tx1', 0 FROM credit_entries WHERE key = 'burn:1'",
    ], "burn:outbox"),
}


@pytest.mark.parametrize("name", sorted(BREACHES))
async def test_each_breach_is_reported(ledger: LedgerService, raw: Raw, name: str) -> None:
    statements, expected = BREACHES[name]
    hold_g4 = raw.one("SELECT entry_id FROM credit_holds WHERE generation_id = 'g4'")[0]
    for statement in statements:
        if isinstance(statement, tuple):
            sql, params = statement
            raw.execute(sql, tuple(hold_g4 if p == "(hold)" else p for p in params))
        else:
            raw.execute(statement)
    report = await ledger.reconcile()
    assert not report.ok
    assert any(expected in b for b in report.breaches), report.breaches


# -- the CLI -------------------------------------------------------------------------------------------

@pytest.fixture
async def state_dir(tmp_path: Path) -> Path:
    db = Database(tmp_path / "gateway.sqlite3")
    db.migrate(all_migrations())
    await _populate(SqliteLedger(db))
    db.close()
    return tmp_path


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_STATE_DIR": str(state_dir), "GATEWAY_LOG_JSON": "false"}
    return subprocess.run([sys.executable, "-m", "gateway", "reconcile", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def test_cli_exit_codes_and_reports(state_dir: Path, tmp_path: Path) -> None:
    ok = _cli(state_dir, "--json")
    assert ok.returncode == 0, ok.stderr
    as_json = json.loads(ok.stdout)
    assert as_json["ok"] is True and as_json["totals"]["credits_spent"] == 2

    conn = sqlite3.connect(state_dir / "gateway.sqlite3", isolation_level=None)
    conn.execute("UPDATE credit_accounts SET debits_spent = debits_spent + 1 WHERE user_id = 'u1'")
    conn.close()
    bad = _cli(state_dir)
    assert bad.returncode == 1
    assert "reconcile FAILED" in bad.stdout and "user u1: balance row" in bad.stdout

    missing = _cli(tmp_path / "nowhere")
    assert missing.returncode == 2 and "no database" in missing.stderr


@pytest.fixture
def extra_checks() -> Iterator[None]:
    saved = dict(EXTRA_CHECKS)
    yield
    EXTRA_CHECKS.clear()
    EXTRA_CHECKS.update(saved)


async def _chain_ok(settings: object, ledger: object) -> CheckResult:
    return CheckResult([], {"burned_on_chain": 1})


async def _chain_short(settings: object, ledger: object) -> CheckResult:
    return CheckResult(["settled 1 but 0 burned on chain"])


async def _chain_down(settings: object, ledger: object) -> CheckResult:
    raise ConnectionError("indexer unreachable")


def test_registered_checks_extend_the_report(state_dir: Path, extra_checks: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The command's own entry point (``main`` would also configure logging onto the captured stdout).
    _help, _add_arguments, run = COMMANDS["reconcile"]
    settings = GatewaySettings(state_dir=state_dir)
    register_check("burns", _chain_ok)
    assert run(settings, argparse.Namespace(json=True)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["totals"]["burns.burned_on_chain"] == 1 and result["checks"]["burns"]["ok"]
    assert run(settings, argparse.Namespace(json=False)) == 0
    text = capsys.readouterr().out
    assert text.startswith("reconcile OK") and "check burns: ok" in text and "credits_spent" in text
    register_check("burns", _chain_short)
    assert run(settings, argparse.Namespace(json=False)) == 1
    assert "[burns] settled 1 but 0 burned" in capsys.readouterr().out
    register_check("burns", _chain_down)
    assert run(settings, argparse.Namespace(json=False)) == 1
    assert "check failed to run: ConnectionError" in capsys.readouterr().out


async def test_cli_on_postgres(make_ledger: MakeLedger, tmp_path: Path) -> None:
    ledger = await make_ledger("postgres")
    assert isinstance(ledger, PostgresLedger)
    await _populate(ledger)
    url = ledger.url
    env = {**os.environ, "GATEWAY_STATE_DIR": str(tmp_path), "GATEWAY_DATABASE_URL": url}
    command = [sys.executable, "-m", "gateway", "reconcile", "--json"]
    ok = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    result = json.loads(ok.stdout)
    # Other domains' registered checks run too and decide the exit code with the ledger's own.
    assert result["checks"]["ledger"] == {"ok": True, "breaches": []}, ok.stderr
    assert ok.returncode == (0 if result["ok"] else 1)
    assert result["totals"]["credits_spent"] == 2
    raw = Raw(ledger)
    raw.execute("UPDATE credit_accounts SET credits_posted = credits_posted + 1 WHERE user_id = 'u2'")
    raw.close()
    bad = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "user u2: balance row" in " ".join(json.loads(bad.stdout)["checks"]["ledger"]["breaches"])
