"""Billing's tables and their SQL (run inside ``db.write`` / ``db.read`` transactions, never on the loop).

- ``billing_purchases``: one row per purchase, written BEFORE Stripe is called, so the idempotency key
  derived from its id survives a crash and a retry replays Stripe's first answer.
- ``billing_webhook_events``: every verified event id once (dedupe); ``processed_at`` set when done.
- ``billing_charges`` + ``billing_reversal_steps``: what each charge has lost (refunds, a lost
  dispute) and the reversal steps that take its purchase's credits down to match, each step with a
  fixed amount and its own ledger key, so a replay (or a crash between steps) never reverses twice.
- ``billing_disputes``: each dispute's latest state; the account is frozen while one is open.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from gateway.lib.db import Migration

__all__ = [
    "MIGRATIONS",
    "Dispute",
    "Purchase",
    "ReversalStep",
    "attach_checkout_session",
    "attach_payment_intent",
    "find_purchase_by_payment_intent",
    "finish_event",
    "forgive_lost_disputes",
    "get_purchase",
    "insert_purchase",
    "mark_credited",
    "mark_step_applied",
    "open_disputes",
    "prune_events",
    "record_charge_loss",
    "record_dispute",
    "set_status",
    "start_event",
    "unapplied_steps",
    "user_dispute_state",
]

MIGRATIONS = [
    Migration("billing:0001-purchases-webhooks-reversals-disputes", """
CREATE TABLE billing_purchases (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    pack_id TEXT NOT NULL,
    credits INTEGER NOT NULL CHECK (credits > 0),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    flow TEXT NOT NULL CHECK (flow IN ('card', 'elements', 'checkout')),
    request_key TEXT,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_intent_id TEXT UNIQUE,
    checkout_session_id TEXT UNIQUE,
    charge_id TEXT,
    decline_code TEXT NOT NULL DEFAULT '',
    credited INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (user_id, request_key)
);
CREATE INDEX billing_purchases_by_user ON billing_purchases (user_id, created_at);
CREATE INDEX billing_purchases_by_charge ON billing_purchases (charge_id);
CREATE TABLE billing_webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    received_at REAL NOT NULL,
    processed_at REAL,
    result TEXT NOT NULL DEFAULT ''
);
CREATE TABLE billing_charges (
    charge_id TEXT PRIMARY KEY,
    purchase_id TEXT NOT NULL REFERENCES billing_purchases (id),
    amount INTEGER NOT NULL,
    amount_refunded INTEGER NOT NULL DEFAULT 0,
    dispute_lost_amount INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE billing_reversal_steps (
    charge_id TEXT NOT NULL REFERENCES billing_charges (charge_id),
    from_credits INTEGER NOT NULL,
    to_credits INTEGER NOT NULL CHECK (to_credits > from_credits),
    applied INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (charge_id, to_credits),
    UNIQUE (charge_id, from_credits)
);
CREATE TABLE billing_disputes (
    id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL,
    purchase_id TEXT NOT NULL REFERENCES billing_purchases (id),
    user_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX billing_disputes_by_user ON billing_disputes (user_id, closed)
"""),
    # a lost dispute the operator has dealt with (``python -m gateway billing-unfreeze``) no longer freezes
    Migration("billing:0002-disputes-forgiven",
              "ALTER TABLE billing_disputes ADD COLUMN forgiven INTEGER NOT NULL DEFAULT 0"),
]

# A succeeded purchase never goes back; every other status follows the latest news from Stripe.
_FINAL = ("succeeded",)


@dataclass(frozen=True)
class Purchase:
    id: str
    user_id: str
    pack_id: str
    credits: int
    amount: int
    currency: str
    flow: str
    status: str
    request_key: str | None
    request_hash: str
    payment_intent_id: str | None
    checkout_session_id: str | None
    charge_id: str | None
    decline_code: str
    credited: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ReversalStep:
    charge_id: str
    from_credits: int
    to_credits: int

    @property
    def credits(self) -> int:
        return self.to_credits - self.from_credits


@dataclass(frozen=True)
class Dispute:
    id: str
    charge_id: str
    purchase_id: str
    user_id: str
    amount: int
    status: str
    closed: bool


def _purchase(row: sqlite3.Row | None) -> Purchase | None:
    if row is None:
        return None
    values: dict[str, Any] = dict(row)
    values["credited"] = bool(values["credited"])
    return Purchase(**values)


def insert_purchase(conn: sqlite3.Connection, purchase: Purchase) -> Purchase:
    """Insert, or return the row already there for the same (user, request key)."""
    if purchase.request_key is not None:
        existing = conn.execute("SELECT * FROM billing_purchases WHERE user_id = ? AND request_key = ?",
                                (purchase.user_id, purchase.request_key)).fetchone()
        if existing is not None:
            return _purchase(existing)  # type: ignore[return-value]
    p = purchase
    conn.execute(
        "INSERT INTO billing_purchases (id, user_id, pack_id, credits, amount, currency, flow, request_key,"
        " request_hash, status, payment_intent_id, checkout_session_id, charge_id, decline_code, credited,"
        " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (p.id, p.user_id, p.pack_id, p.credits, p.amount, p.currency, p.flow, p.request_key, p.request_hash,
         p.status, p.payment_intent_id, p.checkout_session_id, p.charge_id, p.decline_code, int(p.credited),
         p.created_at, p.updated_at),
    )
    return purchase


def get_purchase(conn: sqlite3.Connection, purchase_id: str) -> Purchase | None:
    return _purchase(conn.execute("SELECT * FROM billing_purchases WHERE id = ?", (purchase_id,)).fetchone())


def find_purchase_by_payment_intent(conn: sqlite3.Connection, payment_intent_id: str) -> Purchase | None:
    return _purchase(conn.execute("SELECT * FROM billing_purchases WHERE payment_intent_id = ?",
                                  (payment_intent_id,)).fetchone())


def attach_payment_intent(conn: sqlite3.Connection, purchase_id: str, payment_intent_id: str,
                          charge_id: str = "") -> bool:
    """Record the purchase's PaymentIntent (and charge); False when it already has another one."""
    row = conn.execute("SELECT payment_intent_id, charge_id FROM billing_purchases WHERE id = ?",
                       (purchase_id,)).fetchone()
    if row is None or (row["payment_intent_id"] and row["payment_intent_id"] != payment_intent_id):
        return False
    conn.execute("UPDATE billing_purchases SET payment_intent_id = ?, charge_id = COALESCE(NULLIF(?, ''), charge_id),"
                 " updated_at = ? WHERE id = ?", (payment_intent_id, charge_id, time.time(), purchase_id))
    return True


def attach_checkout_session(conn: sqlite3.Connection, purchase_id: str, session_id: str) -> bool:
    row = conn.execute("SELECT checkout_session_id FROM billing_purchases WHERE id = ?", (purchase_id,)).fetchone()
    if row is None or (row["checkout_session_id"] and row["checkout_session_id"] != session_id):
        return False
    conn.execute("UPDATE billing_purchases SET checkout_session_id = ?, updated_at = ? WHERE id = ?",
                 (session_id, time.time(), purchase_id))
    return True


def set_status(conn: sqlite3.Connection, purchase_id: str, status: str, *, decline_code: str = "") -> None:
    conn.execute(
        f"UPDATE billing_purchases SET status = ?, decline_code = ?, updated_at = ?"  # noqa: S608 (constants)
        f" WHERE id = ? AND status NOT IN ({','.join('?' for _ in _FINAL)})",
        (status, decline_code, time.time(), purchase_id, *_FINAL),
    )


def mark_credited(conn: sqlite3.Connection, purchase_id: str) -> None:
    conn.execute("UPDATE billing_purchases SET credited = 1, status = 'succeeded', decline_code = '', updated_at = ?"
                 " WHERE id = ?", (time.time(), purchase_id))


# -- webhook events ------------------------------------------------------------------------------

def start_event(conn: sqlite3.Connection, event_id: str, event_type: str) -> str | None:
    """Record an event's arrival; the first result when it was processed before (a duplicate)."""
    row = conn.execute("SELECT processed_at, result FROM billing_webhook_events WHERE id = ?", (event_id,)).fetchone()
    if row is not None:
        return str(row["result"]) if row["processed_at"] is not None else None
    conn.execute("INSERT INTO billing_webhook_events (id, type, received_at) VALUES (?, ?, ?)",
                 (event_id, event_type, time.time()))
    return None


def prune_events(conn: sqlite3.Connection, *, older_than: float, limit: int = 10_000) -> int:
    """Forget processed events received before ``older_than`` (every handler is idempotent on its own;
    the table only saves work and reports the first result of a replay)."""
    cur = conn.execute("DELETE FROM billing_webhook_events WHERE id IN (SELECT id FROM billing_webhook_events"
                       " WHERE processed_at IS NOT NULL AND received_at < ? LIMIT ?)", (older_than, limit))
    return cur.rowcount


def finish_event(conn: sqlite3.Connection, event_id: str, result: str) -> None:
    conn.execute("UPDATE billing_webhook_events SET processed_at = ?, result = ? WHERE id = ?",
                 (time.time(), result, event_id))


# -- charge losses and the reversals that follow them --------------------------------------------

def record_charge_loss(conn: sqlite3.Connection, *, charge_id: str, purchase: Purchase, charge_amount: int,
                       amount_refunded: int | None = None, dispute_lost_amount: int | None = None) -> None:
    """Keep the largest cumulative loss seen for a charge and add the reversal step it calls for.

    Target reversed credits = floor(credits × min(amount, refunded + lost in dispute) / amount): rounding
    down favours the artist by less than one credit and never reverses more than was bought. Events
    are unordered, so amounts only ever grow (a late partial-refund event after the full one is a no-op).
    """
    amount = charge_amount if charge_amount > 0 else purchase.amount
    row = conn.execute("SELECT amount_refunded, dispute_lost_amount FROM billing_charges WHERE charge_id = ?",
                       (charge_id,)).fetchone()
    refunded = max(int(row["amount_refunded"]) if row else 0, amount_refunded or 0)
    lost = max(int(row["dispute_lost_amount"]) if row else 0, dispute_lost_amount or 0)
    conn.execute(
        "INSERT INTO billing_charges (charge_id, purchase_id, amount, amount_refunded, dispute_lost_amount, updated_at)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (charge_id) DO UPDATE SET amount_refunded = excluded.amount_refunded,"
        " dispute_lost_amount = excluded.dispute_lost_amount, updated_at = excluded.updated_at",
        (charge_id, purchase.id, amount, refunded, lost, time.time()),
    )
    target = purchase.credits * min(amount, refunded + lost) // amount
    done = conn.execute("SELECT COALESCE(MAX(to_credits), 0) FROM billing_reversal_steps WHERE charge_id = ?",
                        (charge_id,)).fetchone()[0]
    if target > done:
        conn.execute("INSERT INTO billing_reversal_steps (charge_id, from_credits, to_credits, created_at)"
                     " VALUES (?,?,?,?)", (charge_id, done, target, time.time()))


def unapplied_steps(conn: sqlite3.Connection, charge_id: str) -> list[ReversalStep]:
    rows = conn.execute("SELECT charge_id, from_credits, to_credits FROM billing_reversal_steps"
                        " WHERE charge_id = ? AND applied = 0 ORDER BY to_credits", (charge_id,)).fetchall()
    return [ReversalStep(r["charge_id"], int(r["from_credits"]), int(r["to_credits"])) for r in rows]


def mark_step_applied(conn: sqlite3.Connection, step: ReversalStep) -> None:
    conn.execute("UPDATE billing_reversal_steps SET applied = 1 WHERE charge_id = ? AND to_credits = ?",
                 (step.charge_id, step.to_credits))


# -- disputes ---------------------------------------------------------------------------------------

def record_dispute(conn: sqlite3.Connection, dispute: Dispute) -> Dispute:
    """Upsert a dispute's news. Closed is final: a late ``created`` after ``closed`` does not reopen it."""
    row = conn.execute("SELECT * FROM billing_disputes WHERE id = ?", (dispute.id,)).fetchone()
    if row is not None and row["closed"]:
        return Dispute(row["id"], row["charge_id"], row["purchase_id"], row["user_id"], int(row["amount"]),
                       row["status"], True)  # closed is final
    conn.execute(
        "INSERT INTO billing_disputes (id, charge_id, purchase_id, user_id, amount, status, closed, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
        " closed = excluded.closed, amount = excluded.amount, updated_at = excluded.updated_at",
        (dispute.id, dispute.charge_id, dispute.purchase_id, dispute.user_id, dispute.amount, dispute.status,
         int(dispute.closed), time.time()),
    )
    return dispute


def user_dispute_state(conn: sqlite3.Connection, user_id: str) -> tuple[int, int]:
    """(open disputes, disputes lost and not forgiven) of a user: frozen while either is non-zero."""
    row = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN closed = 0 THEN 1 ELSE 0 END), 0),"  # CASE: PostgreSQL sums no booleans
        " COALESCE(SUM(CASE WHEN closed = 1 AND status = 'lost' AND forgiven = 0 THEN 1 ELSE 0 END), 0)"
        " FROM billing_disputes WHERE user_id = ?", (user_id,)).fetchone()
    return int(row[0]), int(row[1])


def open_disputes(conn: sqlite3.Connection, user_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM billing_disputes WHERE user_id = ? AND closed = 0"
                                       " ORDER BY id", (user_id,))]


def forgive_lost_disputes(conn: sqlite3.Connection, user_id: str) -> list[str]:
    """Mark the user's lost disputes as dealt with; their ids."""
    ids = [r[0] for r in conn.execute("SELECT id FROM billing_disputes WHERE user_id = ? AND status = 'lost'"
                                      " AND forgiven = 0 ORDER BY id", (user_id,))]
    conn.execute("UPDATE billing_disputes SET forgiven = 1, updated_at = ? WHERE user_id = ? AND status = 'lost'",
                 (time.time(), user_id))
    return ids
