"""Billing's SQL on a real SQLite database: the reversal steps' arithmetic and the dedupe table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.billing import repository as repo
from gateway.billing.repository import Purchase
from gateway.lib.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "billing.sqlite3")
    database.migrate(repo.MIGRATIONS)
    yield database
    database.close()


def _purchase(db: Database, credits: int = 10, amount: int = 500) -> Purchase:
    now = time.time()
    purchase = Purchase(id="pur_1", user_id="u1", pack_id="p", credits=credits, amount=amount, currency="usd",
                        flow="card", status="succeeded", request_key=None, request_hash="h",
                        payment_intent_id="pi_1", checkout_session_id=None, charge_id="ch_1", decline_code="",
                        credited=True, created_at=now, updated_at=now)
    return db.write_sync(lambda c: repo.insert_purchase(c, purchase))


def _loss(db: Database, purchase: Purchase, *, refunded: int | None = None, lost: int | None = None) -> list[int]:
    def run(c: sqlite3.Connection) -> list[int]:
        repo.record_charge_loss(c, charge_id="ch_1", purchase=purchase, charge_amount=purchase.amount,
                                amount_refunded=refunded, dispute_lost_amount=lost)
        steps = repo.unapplied_steps(c, "ch_1")
        for step in steps:
            repo.mark_step_applied(c, step)
        return [s.credits for s in steps]

    return db.write_sync(run)


def test_reversals_follow_the_cumulative_refund_rounded_down(db: Database) -> None:
    purchase = _purchase(db)  # 10 credits for 500
    assert _loss(db, purchase, refunded=1) == []  # floor(10 × 1 / 500) = 0: nothing yet
    assert _loss(db, purchase, refunded=130) == [2]  # floor(2.6)
    assert _loss(db, purchase, refunded=130) == []  # the same news again
    assert _loss(db, purchase, refunded=100) == []  # older, smaller news (out of order): no-op
    assert _loss(db, purchase, refunded=260) == [3]  # floor(5.2) = 5 in all
    assert _loss(db, purchase, refunded=500) == [5]  # everything
    assert _loss(db, purchase, lost=500) == []  # never more than was bought
    steps = db.read_sync(lambda c: c.execute("SELECT from_credits, to_credits FROM billing_reversal_steps"
                                             " ORDER BY to_credits").fetchall())
    assert [tuple(s) for s in steps] == [(0, 2), (2, 5), (5, 10)]


def test_a_lost_dispute_adds_to_what_was_refunded(db: Database) -> None:
    purchase = _purchase(db, credits=7, amount=999)
    assert _loss(db, purchase, refunded=300) == [2]  # floor(7 × 300 / 999) = 2
    assert _loss(db, purchase, lost=699) == [5]  # 300 + 699 = everything: 7


def test_events_are_remembered_until_pruned(db: Database) -> None:
    assert db.write_sync(lambda c: repo.start_event(c, "evt_1", "charge.refunded")) is None
    # not finished (the handler failed): a redelivery processes it again
    assert db.write_sync(lambda c: repo.start_event(c, "evt_1", "charge.refunded")) is None
    db.write_sync(lambda c: repo.finish_event(c, "evt_1", "reversed"))
    assert db.write_sync(lambda c: repo.start_event(c, "evt_1", "charge.refunded")) == "reversed"
    assert db.write_sync(lambda c: repo.prune_events(c, older_than=time.time() - 60)) == 0
    assert db.write_sync(lambda c: repo.prune_events(c, older_than=time.time() + 1)) == 1
    assert db.write_sync(lambda c: repo.start_event(c, "evt_1", "charge.refunded")) is None
