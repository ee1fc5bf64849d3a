"""``SqliteLedger``: the ledger on the gateway's SQLite database (the embedded default).

Each write method validates its arguments, then runs one transaction body from
``gateway.credits.sqlite_tx`` through ``db.write`` (the single writer thread, ``BEGIN IMMEDIATE``, WAL,
``synchronous=FULL``: a method that returned has committed durably). Reads go through ``db.read``.
Metrics are counted after the commit, so they count what the ledger actually did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from gateway.credits import sqlite_tx as tx
from gateway.credits.ledger import (
    AccountFrozen,
    Balance,
    BurnIntent,
    Entry,
    Hold,
    HoldExpired,
    HoldNotFound,
    InsufficientCredits,
    ReconcileReport,
)
from gateway.credits.metrics import HOLDS, OUTBOX_DEPTH, POSTS, PURCHASES, RECONCILE_BREACHES, VOIDS, void_reason_label
from gateway.credits.reconcile import QUERIES, evaluate
from gateway.credits.validation import (
    MAX_SETTLE_BATCH,
    LedgerInputError,
    check_amount,
    check_id,
    check_key,
    check_timeout,
    encode_reference,
)
from gateway.lib.db import Database
from gateway.lib.errors import GatewayError

__all__ = ["SqliteLedger"]

T = TypeVar("T")
MAX_PAGE = 10_000


def _page(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise LedgerInputError(f"limit must be an integer between 1 and {MAX_PAGE}")
    return limit


def _reason(reason: str) -> str:
    check_id("reason", reason)
    return reason


class SqliteLedger:
    """The :class:`gateway.credits.ledger.Ledger` contract on SQLite."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    async def _write(self, body: Callable[..., tx.Outcome[T]], **kwargs: Any) -> tx.Outcome[T]:
        outcome = await self.db.write(partial(body, now=self._clock(), **kwargs))
        if outcome.error is not None:
            raise outcome.error
        return outcome

    # -- purchases, reversals, freezes --

    async def balance(self, user_id: str) -> Balance:
        return await self.db.read(partial(tx.balance, user_id=check_id("user_id", user_id)))

    async def credit_purchase(self, *, user_id: str, credits: int, key: str,
                              reference: dict[str, Any] | None = None) -> Entry:
        outcome = await self._write(tx.credit_purchase, user_id=check_id("user_id", user_id),
                                    credits=check_amount("credits", credits), key=check_key(key),
                                    reference=encode_reference(reference))
        PURCHASES.labels("purchase", "replayed" if outcome.replayed else "written").inc()
        return outcome.value

    async def reverse_purchase(self, *, user_id: str, credits: int, key: str,
                               reference: dict[str, Any] | None = None) -> Entry:
        outcome = await self._write(tx.reverse_purchase, user_id=check_id("user_id", user_id),
                                    credits=check_amount("credits", credits), key=check_key(key),
                                    reference=encode_reference(reference))
        PURCHASES.labels("reversal", "replayed" if outcome.replayed else "written").inc()
        return outcome.value

    async def set_frozen(self, user_id: str, frozen: bool, *, reason: str, key: str) -> Balance:
        if not isinstance(frozen, bool):
            raise LedgerInputError("frozen must be a boolean")
        outcome = await self._write(tx.set_frozen, user_id=check_id("user_id", user_id), frozen=frozen,
                                    reason=check_id("reason", reason) if reason else "", key=check_key(key))
        return outcome.value

    # -- holds --

    async def hold(self, *, user_id: str, generation_id: str, amount: int = 1, timeout_s: float) -> Hold:
        try:
            outcome = await self._write(tx.hold, user_id=check_id("user_id", user_id),
                                        generation_id=check_id("generation_id", generation_id),
                                        amount=check_amount("amount", amount), timeout_s=check_timeout(timeout_s))
        except InsufficientCredits:
            HOLDS.labels("insufficient").inc()
            raise
        except AccountFrozen:
            HOLDS.labels("frozen").inc()
            raise
        HOLDS.labels("replayed" if outcome.replayed else "created").inc()
        return outcome.value

    async def post(self, generation_id: str) -> Hold:
        try:
            outcome = await self._write(tx.post, generation_id=check_id("generation_id", generation_id))
        except HoldExpired:
            POSTS.labels("expired").inc()
            VOIDS.labels("expired").inc()  # counted once: a late post of an expired hold voids it
            raise
        except HoldNotFound:
            POSTS.labels("not_found").inc()
            raise
        except GatewayError:
            POSTS.labels("resolved").inc()
            raise
        POSTS.labels("replayed" if outcome.replayed else "posted").inc()
        return outcome.value

    async def void(self, generation_id: str, *, reason: str) -> Hold:
        outcome = await self._write(tx.void, generation_id=check_id("generation_id", generation_id),
                                    reason=_reason(reason))
        if not outcome.replayed:
            VOIDS.labels(void_reason_label(reason)).inc()
        return outcome.value

    async def get_hold(self, generation_id: str) -> Hold | None:
        return await self.db.read(partial(tx.get_hold, generation_id=check_id("generation_id", generation_id)))

    async def void_expired(self, *, now: float | None = None, limit: int = 1000) -> int:
        at = self._clock() if now is None else now
        voided = await self.db.write(partial(tx.void_expired, now=at, limit=_page(limit)))
        if voided:
            VOIDS.labels("expired").inc(len(voided))
        return len(voided)

    # -- the outbox --

    async def outbox(self, *, after_seq: int = 0, limit: int = 1000) -> list[BurnIntent]:
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise LedgerInputError("after_seq must be a non-negative integer")
        return await self.db.read(partial(tx.outbox, after_seq=after_seq, limit=_page(limit)))

    async def outbox_depth(self) -> int:
        """Burn intents not yet settled (also exported as the ``gateway_credit_outbox_depth`` gauge)."""
        depth = await self.db.read(tx.outbox_depth)
        OUTBOX_DEPTH.set(depth)
        return depth

    async def overdue_holds(self, *, grace_s: float) -> int:
        """Pending holds more than ``grace_s`` past their expiry (the sweeper is stuck or behind)."""
        cutoff = self._clock() - grace_s
        return await self.db.read(lambda conn: int(conn.execute(
            "SELECT COUNT(*) FROM credit_holds WHERE state = 'pending' AND expires_at <= ?", (cutoff,)
        ).fetchone()[0]))

    async def settle_burn(self, *, key: str, generation_ids: list[str], tx_id: str) -> Entry:
        if not isinstance(generation_ids, list) or not 1 <= len(generation_ids) <= MAX_SETTLE_BATCH:
            raise LedgerInputError(f"generation_ids must be a list of 1 to {MAX_SETTLE_BATCH} ids")
        ids = [check_id("generation_id", g) for g in generation_ids]
        if len(set(ids)) != len(ids):
            raise LedgerInputError("generation_ids contains duplicates")
        outcome = await self._write(tx.settle_burn, key=check_key(key), generation_ids=ids,
                                    tx_id=check_id("tx_id", tx_id))
        PURCHASES.labels("burn_settle", "replayed" if outcome.replayed else "written").inc()
        return outcome.value

    # -- invariants --

    async def reconcile(self) -> ReconcileReport:
        rows = await self.db.read(lambda conn: {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()})
        report = evaluate(rows)
        RECONCILE_BREACHES.set(len(report.breaches))
        return report
