"""The storage refuses what the ledger promises never to do: UPDATE or DELETE of money rows, a hold
resolved twice, a second resolution entry, impossible amounts. Written with raw sqlite3 to prove the
refusal is the database's, not the Python code's."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database


@pytest.fixture
async def raw(ledger: SqliteLedger, db: Database) -> Iterator[sqlite3.Connection]:
    await ledger.credit_purchase(user_id="u1", credits=5, key="stripe:pi:1")
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    await ledger.post("g1")
    await ledger.hold(user_id="u1", generation_id="g2", timeout_s=60)
    await ledger.void("g2", reason="cancelled")
    await ledger.hold(user_id="u1", generation_id="g3", timeout_s=60)
    await ledger.settle_burn(key="burn:1", generation_ids=["g1"], tx_id="tx1")
    await ledger.set_frozen("u1", False, reason="", key="op:1")
    conn = sqlite3.connect(Path(db.path), isolation_level=None)
    yield conn
    conn.close()


@pytest.mark.parametrize("statement", [
    "UPDATE credit_entries SET amount = 100 WHERE kind = 'purchase'",
    "UPDATE credit_entries SET reference = '{}'",
    "DELETE FROM credit_entries WHERE kind = 'post'",
    "DELETE FROM credit_entries",
    "UPDATE burn_intents SET amount = 0",
    "DELETE FROM burn_intents",
    "UPDATE burn_settlements SET tx_id = 'other'",
    "DELETE FROM burn_settlements",
    "UPDATE credit_freezes SET frozen = 1",
    "DELETE FROM credit_freezes",
])
async def test_money_rows_are_append_only(raw: sqlite3.Connection, statement: str) -> None:
    before = raw.execute("SELECT COUNT(*), SUM(amount) FROM credit_entries").fetchone()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute(statement)
    assert raw.execute("SELECT COUNT(*), SUM(amount) FROM credit_entries").fetchone() == before


@pytest.mark.parametrize(("statement", "message"), [
    ("UPDATE credit_holds SET state = 'pending' WHERE generation_id = 'g1'", "exactly once"),
    ("UPDATE credit_holds SET state = 'voided' WHERE generation_id = 'g1'", "exactly once"),
    ("UPDATE credit_holds SET state = 'posted' WHERE generation_id = 'g2'", "exactly once"),
    ("UPDATE credit_holds SET amount = 5 WHERE generation_id = 'g3'", "exactly once"),
    ("UPDATE credit_holds SET expires_at = expires_at + 1000 WHERE generation_id = 'g3'", "exactly once"),
    ("UPDATE credit_holds SET user_id = 'u2' WHERE generation_id = 'g3'", "exactly once"),
    ("DELETE FROM credit_holds WHERE generation_id = 'g3'", "never deleted"),
    ("DELETE FROM credit_accounts", "never deleted"),
])
async def test_holds_change_once_and_nothing_is_deleted(raw: sqlite3.Connection, statement: str,
                                                        message: str) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=message):
        raw.execute(statement)


async def test_a_pending_hold_may_move_once(raw: sqlite3.Connection) -> None:
    raw.execute("UPDATE credit_holds SET state = 'voided', reason = 'x' WHERE generation_id = 'g3'")
    with pytest.raises(sqlite3.IntegrityError, match="exactly once"):
        raw.execute("UPDATE credit_holds SET state = 'posted' WHERE generation_id = 'g3'")


async def test_a_second_resolution_entry_and_bad_amounts_are_refused(raw: sqlite3.Connection) -> None:
    hold_entry = raw.execute("SELECT id FROM credit_entries WHERE key = 'hold:g1'").fetchone()[0]
    insert = ("INSERT INTO credit_entries (key, kind, debit_account, credit_account, amount, pending_id, created_at)"
              " VALUES (?, ?, 'user:u1', 'burn:outbox', ?, ?, 0)")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        raw.execute(insert, ("void:again", "void", 1, hold_entry))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        raw.execute(insert, ("hold:g1", "hold", 1, None))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw.execute(insert, ("neg", "hold", -1, None))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw.execute(insert, ("post-without-hold", "post", 1, None))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw.execute(insert, ("weird-kind", "gift", 1, None))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw.execute("UPDATE credit_accounts SET debits_pending = -1")
