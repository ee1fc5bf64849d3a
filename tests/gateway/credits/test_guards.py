"""The storage refuses what the ledger promises never to do: UPDATE or DELETE of money rows, a hold
resolved twice, a second resolution entry, impossible amounts. Written with a raw connection (sqlite3,
psycopg) to prove the refusal is the database's, not the Python code's; on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.credits.service import LedgerService
from tests.gateway.credits.conftest import MakeLedger
from tests.gateway.credits.raw import REFUSED, Raw


async def _populate(ledger: LedgerService) -> None:
    await ledger.credit_purchase(user_id="u1", credits=5, key="stripe:pi:1")
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    await ledger.post("g1")
    await ledger.hold(user_id="u1", generation_id="g2", timeout_s=60)
    await ledger.void("g2", reason="cancelled")
    await ledger.hold(user_id="u1", generation_id="g3", timeout_s=60)
    await ledger.settle_burn(key="burn:1", generation_ids=["g1"], tx_id="tx1")
    await ledger.set_frozen("u1", False, reason="", key="op:1")


@pytest.fixture
async def raw(ledger: LedgerService) -> AsyncIterator[Raw]:
    await _populate(ledger)
    conn = Raw(ledger)
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
async def test_money_rows_are_append_only(raw: Raw, statement: str) -> None:
    before = raw.one("SELECT COUNT(*), SUM(amount) FROM credit_entries")
    with pytest.raises(REFUSED, match="append-only"):
        raw.execute(statement)
    assert raw.one("SELECT COUNT(*), SUM(amount) FROM credit_entries") == before


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
async def test_holds_change_once_and_nothing_is_deleted(raw: Raw, statement: str,
                                                        message: str) -> None:
    with pytest.raises(REFUSED, match=message):
        raw.execute(statement)


async def test_a_pending_hold_may_move_once(raw: Raw) -> None:
    raw.execute("UPDATE credit_holds SET state = 'voided', reason = 'x' WHERE generation_id = 'g3'")
    with pytest.raises(REFUSED, match="exactly once"):
        raw.execute("UPDATE credit_holds SET state = 'posted' WHERE generation_id = 'g3'")


async def test_a_second_resolution_entry_and_bad_amounts_are_refused(raw: Raw) -> None:
    hold_entry = raw.one("SELECT id FROM credit_entries WHERE key = 'hold:g1'")[0]
    insert = ("INSERT INTO credit_entries (key, kind, debit_account, credit_account, amount, pending_id, created_at)"
              " VALUES (?, ?, 'user:u1', 'burn:outbox', ?, ?, 0)")
    with pytest.raises(REFUSED, match=r"(?i)unique"):
        raw.execute(insert, ("void:again", "void", 1, hold_entry))
    with pytest.raises(REFUSED, match=r"(?i)unique"):
        raw.execute(insert, ("hold:g1", "hold", 1, None))
    with pytest.raises(REFUSED, match=r"(?i)check"):
        raw.execute(insert, ("neg", "hold", -1, None))
    with pytest.raises(REFUSED, match=r"(?i)check"):
        raw.execute(insert, ("post-without-hold", "post", 1, None))
    with pytest.raises(REFUSED, match=r"(?i)check"):
        raw.execute(insert, ("weird-kind", "gift", 1, None))
    with pytest.raises(REFUSED, match=r"(?i)check"):
        raw.execute("UPDATE credit_accounts SET debits_pending = -1")


async def test_postgres_refuses_truncate_of_entries(make_ledger: MakeLedger) -> None:
    ledger = await make_ledger("postgres")  # SQLite has no TRUNCATE; its DELETE is refused above
    await _populate(ledger)
    raw = Raw(ledger)
    try:
        for table in ("credit_entries", "burn_intents"):
            with pytest.raises(REFUSED, match="append-only"):
                raw.execute(f"TRUNCATE {table} CASCADE")
        assert raw.one("SELECT COUNT(*) FROM credit_entries")[0] == 7
    finally:
        raw.close()
