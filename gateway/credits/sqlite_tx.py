"""The ledger's transactions on SQLite: each public function is the body of ONE ``BEGIN IMMEDIATE``
transaction (``Database.write_sync`` runs it) and is a handful of statements.

The write path never reads before it writes when it can help it: a new entry is inserted with
``ON CONFLICT (key) DO NOTHING`` and only a conflict (a replay) costs a SELECT; a hold's balance check
and reservation are one conditional UPDATE; a hold's state change is an ``UPDATE … RETURNING`` that
only matches a pending, unexpired hold. Raising inside a body rolls the whole transaction back;
the one outcome that must commit *and* fail (posting a hold found expired: it is voided now) is
returned as ``Outcome.error`` and raised by the caller after COMMIT.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from gateway.credits.accounts import BURN_OUTBOX, BURN_SETTLED, REFUND, STRIPE_CLEARING, user_account
from gateway.credits.ledger import (
    AccountFrozen,
    Balance,
    BurnIntent,
    Entry,
    Hold,
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
)
from gateway.credits.results import BurnAlreadySettled, BurnIntentNotFound, Outcome, resolved_error
from gateway.lib.errors import GatewayError

__all__ = [
    "HOLD_COLUMNS",
    "SQL_INSERT_ENTRY",
    "SQL_INSERT_HOLD",
    "SQL_INSERT_INTENT",
    "SQL_POST_HOLD",
    "SQL_RESERVE",
    "SQL_SPEND",
    "BurnAlreadySettled",
    "BurnIntentNotFound",
    "Outcome",
    "balance",
    "credit_purchase",
    "get_hold",
    "hold",
    "outbox",
    "outbox_depth",
    "post",
    "reverse_purchase",
    "set_frozen",
    "settle_burn",
    "void",
    "void_expired",
]

HOLD_COLUMNS = "generation_id, user_id, amount, entry_id, state, created_at, expires_at, resolved_at, reason"
ENTRY_COLUMNS = "id, key, kind, debit_account, credit_account, amount, pending_id, created_at, reference"

SQL_SELECT_ENTRY = f"SELECT {ENTRY_COLUMNS} FROM credit_entries WHERE key = ?"  # noqa: S608 (constants)
SQL_INSERT_ENTRY = (
    "INSERT INTO credit_entries (key, kind, debit_account, credit_account, amount, pending_id, created_at,"
    " reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
SQL_RESERVE = (
    "UPDATE credit_accounts SET debits_pending = debits_pending + ? WHERE user_id = ? AND frozen = 0"
    " AND credits_posted - debits_spent - debits_reversed - debits_pending >= ?"
)
SQL_INSERT_HOLD = (
    "INSERT INTO credit_holds (generation_id, user_id, amount, entry_id, created_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SQL_POST_HOLD = (
    "UPDATE credit_holds SET state = 'posted', resolved_at = ? WHERE generation_id = ? AND state = 'pending'"
    " AND expires_at > ? RETURNING generation_id, user_id, amount, entry_id, state, created_at, expires_at,"
    " resolved_at, reason"
)
SQL_VOID_HOLD = (
    "UPDATE credit_holds SET state = 'voided', resolved_at = ?, reason = ? WHERE generation_id = ?"
    " AND state = 'pending' RETURNING generation_id, user_id, amount, entry_id, state, created_at, expires_at,"
    " resolved_at, reason"
)
SQL_SPEND = (
    "UPDATE credit_accounts SET debits_pending = debits_pending - ?, debits_spent = debits_spent + ?"
    " WHERE user_id = ?"
)
SQL_RELEASE = "UPDATE credit_accounts SET debits_pending = debits_pending - ? WHERE user_id = ?"
SQL_INSERT_INTENT = (
    "INSERT INTO burn_intents (generation_id, user_id, amount, entry_id, created_at) VALUES (?, ?, ?, ?, ?)"
)
SQL_CREDIT_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, credits_posted, created_at) VALUES (?, ?, ?) ON CONFLICT (user_id)"
    " DO UPDATE SET credits_posted = credit_accounts.credits_posted + excluded.credits_posted"
)
SQL_REVERSE_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, debits_reversed, created_at) VALUES (?, ?, ?) ON CONFLICT (user_id)"
    " DO UPDATE SET debits_reversed = credit_accounts.debits_reversed + excluded.debits_reversed"
)
SQL_FREEZE_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, frozen, frozen_reason, created_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET frozen = excluded.frozen, frozen_reason = excluded.frozen_reason"
)


# -- rows ------------------------------------------------------------------------------------------

def _hold(row: sqlite3.Row | tuple[Any, ...]) -> Hold:
    gen, user, amount, _entry_id, state, created, expires, resolved, reason = tuple(row)
    return Hold(gen, user, amount, state, created, expires, resolved, reason)


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> Entry:
    entry_id, key, kind, debit, credit, amount, _pending, created, reference = tuple(row)
    return Entry(entry_id, key, kind, debit, credit, amount, created, json.loads(reference))


def _select_hold_row(conn: sqlite3.Connection, generation_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {HOLD_COLUMNS} FROM credit_holds WHERE generation_id = ?", (generation_id,)  # noqa: S608
    ).fetchone()
    return row


def _insert_entry(conn: sqlite3.Connection, key: str, kind: str, debit: str, credit: str, amount: int,
                  pending_id: int | None, now: float, reference: str) -> int | None:
    """The new entry's id, or None when ``key`` exists already (a replay)."""
    cur = conn.execute(SQL_INSERT_ENTRY, (key, kind, debit, credit, amount, pending_id, now, reference))
    return cur.lastrowid if cur.rowcount == 1 else None


def _replayed_entry(conn: sqlite3.Connection, key: str, kind: str, debit: str, credit: str,
                    amount: int) -> Entry:
    row = conn.execute(SQL_SELECT_ENTRY, (key,)).fetchone()
    entry = _entry(row)
    if (entry.kind, entry.debit_account, entry.credit_account, entry.amount) != (kind, debit, credit, amount):
        raise IdempotencyConflict(
            f"key {key!r} was used for {entry.kind} of {entry.amount} from {entry.debit_account} to"
            f" {entry.credit_account}, not {kind} of {amount} from {debit} to {credit}"
        )
    return entry


# -- purchases, reversals, freezes ------------------------------------------------------------------

def credit_purchase(conn: sqlite3.Connection, *, user_id: str, credits: int, key: str, reference: str,
                    now: float) -> Outcome[Entry]:
    account = user_account(user_id)
    entry_id = _insert_entry(conn, key, "purchase", STRIPE_CLEARING, account, credits, None, now, reference)
    if entry_id is None:
        return Outcome(_replayed_entry(conn, key, "purchase", STRIPE_CLEARING, account, credits), replayed=True)
    conn.execute(SQL_CREDIT_ACCOUNT, (user_id, credits, now))
    return Outcome(Entry(entry_id, key, "purchase", STRIPE_CLEARING, account, credits, now, json.loads(reference)))


def reverse_purchase(conn: sqlite3.Connection, *, user_id: str, credits: int, key: str, reference: str,
                     now: float) -> Outcome[Entry]:
    account = user_account(user_id)
    entry_id = _insert_entry(conn, key, "reversal", account, REFUND, credits, None, now, reference)
    if entry_id is None:
        return Outcome(_replayed_entry(conn, key, "reversal", account, REFUND, credits), replayed=True)
    conn.execute(SQL_REVERSE_ACCOUNT, (user_id, credits, now))
    return Outcome(Entry(entry_id, key, "reversal", account, REFUND, credits, now, json.loads(reference)))


def set_frozen(conn: sqlite3.Connection, *, user_id: str, frozen: bool, reason: str, key: str,
               now: float) -> Outcome[Balance]:
    cur = conn.execute(
        "INSERT INTO credit_freezes (key, user_id, frozen, reason, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING", (key, user_id, int(frozen), reason, now),
    )
    if cur.rowcount == 0:
        first = conn.execute("SELECT user_id, frozen FROM credit_freezes WHERE key = ?", (key,)).fetchone()
        if (first["user_id"], bool(first["frozen"])) != (user_id, frozen):
            raise IdempotencyConflict(f"key {key!r} was used to set frozen={bool(first['frozen'])} for another"
                                      " request")
        return Outcome(balance(conn, user_id), replayed=True)
    conn.execute(SQL_FREEZE_ACCOUNT, (user_id, int(frozen), reason if frozen else "", now))
    return Outcome(balance(conn, user_id))


def balance(conn: sqlite3.Connection, user_id: str) -> Balance:
    row = conn.execute(
        "SELECT credits_posted, debits_spent, debits_reversed, debits_pending, frozen, frozen_reason"
        " FROM credit_accounts WHERE user_id = ?", (user_id,),
    ).fetchone()
    if row is None:
        return Balance(user_id, 0, 0, 0, 0, False)
    credits, spent, reversed_, pending, frozen, reason = tuple(row)
    credited = credits - reversed_
    return Balance(user_id, credited, spent, pending, credited - spent - pending, bool(frozen), reason)


# -- holds ------------------------------------------------------------------------------------------

def _refusal(conn: sqlite3.Connection, user_id: str) -> GatewayError:
    row = conn.execute("SELECT frozen, frozen_reason FROM credit_accounts WHERE user_id = ?", (user_id,)).fetchone()
    if row is not None and row["frozen"]:
        why = f" ({row['frozen_reason']})" if row["frozen_reason"] else ""
        return AccountFrozen(f"This account is frozen{why}: no new generations until it is resolved.")
    return InsufficientCredits()


def hold(conn: sqlite3.Connection, *, user_id: str, generation_id: str, amount: int, timeout_s: float,
         now: float) -> Outcome[Hold]:
    entry_id = _insert_entry(conn, "hold:" + generation_id, "hold", user_account(user_id), BURN_OUTBOX, amount,
                             None, now, "{}")
    if entry_id is None:
        row = _select_hold_row(conn, generation_id)
        if row is None:  # a hold entry is only ever written together with its hold row
            raise RuntimeError(f"ledger corrupt: hold entry without hold row for {generation_id!r}")
        existing = _hold(row)
        if (existing.user_id, existing.amount) != (user_id, amount):
            raise IdempotencyConflict(f"generation {generation_id!r} already holds {existing.amount} for another"
                                      " user or amount")
        return Outcome(existing, replayed=True)
    if conn.execute(SQL_RESERVE, (amount, user_id, amount)).rowcount != 1:
        raise _refusal(conn, user_id)
    expires_at = now + timeout_s
    conn.execute(SQL_INSERT_HOLD, (generation_id, user_id, amount, entry_id, now, expires_at))
    return Outcome(Hold(generation_id, user_id, amount, "pending", now, expires_at))


def _void_pending(conn: sqlite3.Connection, generation_id: str, reason: str, now: float) -> Hold | None:
    rows = conn.execute(SQL_VOID_HOLD, (now, reason, generation_id)).fetchall()
    if not rows:
        return None
    voided, entry_id = _hold(rows[0]), rows[0]["entry_id"]
    conn.execute(SQL_INSERT_ENTRY, ("void:" + generation_id, "void", user_account(voided.user_id), BURN_OUTBOX,
                                    voided.amount, entry_id, now, json.dumps({"reason": reason})))
    conn.execute(SQL_RELEASE, (voided.amount, voided.user_id))
    return voided


def post(conn: sqlite3.Connection, *, generation_id: str, now: float) -> Outcome[Hold]:
    rows = conn.execute(SQL_POST_HOLD, (now, generation_id, now)).fetchall()
    if not rows:
        row = _select_hold_row(conn, generation_id)
        if row is None:
            raise HoldNotFound(f"no hold for generation {generation_id!r}")
        existing = _hold(row)
        if existing.state == "posted":
            return Outcome(existing, replayed=True)
        if existing.state == "voided":
            raise resolved_error(existing, "posted")
        # Pending but past expires_at: void it in this very transaction, so it can never be posted.
        voided = _void_pending(conn, generation_id, "expired", now)
        assert voided is not None  # the row is pending and the writer is exclusive
        return Outcome(voided, error=resolved_error(voided, "posted"))
    posted, hold_entry_id = _hold(rows[0]), rows[0]["entry_id"]
    cur = conn.execute(SQL_INSERT_ENTRY, ("post:" + generation_id, "post", user_account(posted.user_id),
                                          BURN_OUTBOX, posted.amount, hold_entry_id, now, "{}"))
    conn.execute(SQL_SPEND, (posted.amount, posted.amount, posted.user_id))
    conn.execute(SQL_INSERT_INTENT, (generation_id, posted.user_id, posted.amount, cur.lastrowid, now))
    return Outcome(posted)


def void(conn: sqlite3.Connection, *, generation_id: str, reason: str, now: float) -> Outcome[Hold]:
    voided = _void_pending(conn, generation_id, reason, now)
    if voided is not None:
        return Outcome(voided)
    row = _select_hold_row(conn, generation_id)
    if row is None:
        raise HoldNotFound(f"no hold for generation {generation_id!r}")
    existing = _hold(row)
    if existing.state == "voided":
        return Outcome(existing, replayed=True)
    raise resolved_error(existing, "voided")


def void_expired(conn: sqlite3.Connection, *, now: float, limit: int) -> list[Hold]:
    due = [r[0] for r in conn.execute(
        "SELECT generation_id FROM credit_holds WHERE state = 'pending' AND expires_at <= ?"
        " ORDER BY expires_at, generation_id LIMIT ?", (now, limit),
    )]
    voided = (_void_pending(conn, gen, "expired", now) for gen in due)
    return [h for h in voided if h is not None]


def get_hold(conn: sqlite3.Connection, generation_id: str) -> Hold | None:
    row = _select_hold_row(conn, generation_id)
    return None if row is None else _hold(row)


# -- the outbox -------------------------------------------------------------------------------------

def outbox(conn: sqlite3.Connection, *, after_seq: int, limit: int) -> list[BurnIntent]:
    rows = conn.execute(
        "SELECT i.seq, i.generation_id, i.user_id, i.amount, i.created_at FROM burn_intents i"
        " WHERE i.seq > ? AND NOT EXISTS (SELECT 1 FROM burn_settlements s WHERE s.generation_id = i.generation_id)"
        " ORDER BY i.seq LIMIT ?", (after_seq, limit),
    ).fetchall()
    return [BurnIntent(*tuple(r)) for r in rows]


def outbox_depth(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM burn_intents) - (SELECT COUNT(*) FROM burn_settlements)"
    ).fetchone()
    return int(row[0])


def settle_burn(conn: sqlite3.Connection, *, key: str, generation_ids: list[str], tx_id: str,
                now: float) -> Outcome[Entry]:
    reference = {"generations": len(generation_ids), "tx_id": tx_id}
    first = conn.execute(SQL_SELECT_ENTRY, (key,)).fetchone()
    if first is not None:
        entry = _entry(first)
        if entry.kind != "burn_settle" or entry.reference != reference:
            raise IdempotencyConflict(f"key {key!r} was used for {entry.kind} {entry.reference}")
        return Outcome(entry, replayed=True)
    marks = ",".join("?" * len(generation_ids))
    found = conn.execute(
        f"SELECT i.generation_id, i.amount, s.entry_id FROM burn_intents i LEFT JOIN burn_settlements s"  # noqa: S608
        f" ON s.generation_id = i.generation_id WHERE i.generation_id IN ({marks})", generation_ids,
    ).fetchall()
    missing = sorted(set(generation_ids) - {r["generation_id"] for r in found})
    if missing:
        raise BurnIntentNotFound(f"no burn intent for generation(s) {', '.join(missing[:5])}")
    settled = [r["generation_id"] for r in found if r["entry_id"] is not None]
    if settled:
        raise BurnAlreadySettled(f"generation(s) {', '.join(settled[:5])} were settled by another burn")
    amount = sum(r["amount"] for r in found)
    cur = conn.execute(SQL_INSERT_ENTRY, (key, "burn_settle", BURN_OUTBOX, BURN_SETTLED, amount, None, now,
                                          json.dumps(reference, sort_keys=True, separators=(",", ":"))))
    conn.executemany(
        "INSERT INTO burn_settlements (generation_id, entry_id, tx_id, created_at) VALUES (?, ?, ?, ?)",
        [(gen, cur.lastrowid, tx_id, now) for gen in generation_ids],
    )
    return Outcome(Entry(cur.lastrowid or 0, key, "burn_settle", BURN_OUTBOX, BURN_SETTLED, amount, now, reference))
