"""``LedgerService``: the ledger contract's methods, once for both backends.

Each method validates its arguments, runs one transaction body by name through the backend
(``_write``: one durable transaction; ``_read``: one snapshot), raises the outcome's after-commit
error if there is one, and counts metrics after the commit, so they count what the ledger did.
The backends (``SqliteLedger``, ``PostgresLedger``) only say how a body runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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
from gateway.credits.reconcile import evaluate
from gateway.credits.results import Outcome
from gateway.credits.validation import (
    MAX_SETTLE_BATCH,
    LedgerInputError,
    check_amount,
    check_id,
    check_key,
    check_timeout,
    encode_reference,
)
from gateway.lib.errors import GatewayError

__all__ = ["LedgerService"]

MAX_PAGE = 10_000


def _page(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise LedgerInputError(f"limit must be an integer between 1 and {MAX_PAGE}")
    return limit


def _reason(reason: str) -> str:
    check_id("reason", reason)
    return reason


class LedgerService:
    """The :class:`gateway.credits.ledger.Ledger` contract over a backend's transaction bodies."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def _run_write(self, body: str, /, **kwargs: Any) -> Any:
        """Run transaction body ``body`` (a function name of the backend's tx module) in one transaction."""
        raise NotImplementedError

    async def _read(self, body: str, /, **kwargs: Any) -> Any:
        """Run read body ``body`` in one snapshot."""
        raise NotImplementedError

    async def _reconcile_rows(self) -> dict[str, Any]:
        """The rows of every query in ``reconcile.QUERIES``, from one snapshot."""
        raise NotImplementedError

    async def _write(self, body: str, /, **kwargs: Any) -> Outcome[Any]:
        outcome: Outcome[Any] = await self._run_write(body, now=self._clock(), **kwargs)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    # -- purchases, reversals, freezes --

    async def balance(self, user_id: str) -> Balance:
        return await self._read("balance", user_id=check_id("user_id", user_id))  # type: ignore[no-any-return]

    async def credit_purchase(self, *, user_id: str, credits: int, key: str,
                              reference: dict[str, Any] | None = None) -> Entry:
        outcome = await self._write("credit_purchase", user_id=check_id("user_id", user_id),
                                    credits=check_amount("credits", credits), key=check_key(key),
                                    reference=encode_reference(reference))
        PURCHASES.labels("purchase", "replayed" if outcome.replayed else "written").inc()
        result: Entry = outcome.value
        return result

    async def reverse_purchase(self, *, user_id: str, credits: int, key: str,
                               reference: dict[str, Any] | None = None) -> Entry:
        outcome = await self._write("reverse_purchase", user_id=check_id("user_id", user_id),
                                    credits=check_amount("credits", credits), key=check_key(key),
                                    reference=encode_reference(reference))
        PURCHASES.labels("reversal", "replayed" if outcome.replayed else "written").inc()
        result: Entry = outcome.value
        return result

    async def set_frozen(self, user_id: str, frozen: bool, *, reason: str, key: str) -> Balance:
        if not isinstance(frozen, bool):
            raise LedgerInputError("frozen must be a boolean")
        outcome = await self._write("set_frozen", user_id=check_id("user_id", user_id), frozen=frozen,
                                    reason=check_id("reason", reason) if reason else "", key=check_key(key))
        result: Balance = outcome.value
        return result

    # -- holds --

    async def hold(self, *, user_id: str, generation_id: str, amount: int = 1, timeout_s: float) -> Hold:
        try:
            outcome = await self._write("hold", user_id=check_id("user_id", user_id),
                                        generation_id=check_id("generation_id", generation_id),
                                        amount=check_amount("amount", amount), timeout_s=check_timeout(timeout_s))
        except InsufficientCredits:
            HOLDS.labels("insufficient").inc()
            raise
        except AccountFrozen:
            HOLDS.labels("frozen").inc()
            raise
        HOLDS.labels("replayed" if outcome.replayed else "created").inc()
        result: Hold = outcome.value
        return result

    async def post(self, generation_id: str) -> Hold:
        try:
            outcome = await self._write("post", generation_id=check_id("generation_id", generation_id))
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
        result: Hold = outcome.value
        return result

    async def void(self, generation_id: str, *, reason: str) -> Hold:
        outcome = await self._write("void", generation_id=check_id("generation_id", generation_id),
                                    reason=_reason(reason))
        if not outcome.replayed:
            VOIDS.labels(void_reason_label(reason)).inc()
        result: Hold = outcome.value
        return result

    async def get_hold(self, generation_id: str) -> Hold | None:
        return await self._read("get_hold", generation_id=check_id("generation_id", generation_id))  # type: ignore[no-any-return]

    async def void_expired(self, *, now: float | None = None, limit: int = 1000) -> int:
        at = self._clock() if now is None else now
        voided: list[Hold] = await self._run_write("void_expired", now=at, limit=_page(limit))
        if voided:
            VOIDS.labels("expired").inc(len(voided))
        return len(voided)

    # -- the outbox --

    async def outbox(self, *, after_seq: int = 0, limit: int = 1000) -> list[BurnIntent]:
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise LedgerInputError("after_seq must be a non-negative integer")
        return await self._read("outbox", after_seq=after_seq, limit=_page(limit))  # type: ignore[no-any-return]

    async def outbox_depth(self) -> int:
        """Burn intents not yet settled (also exported as the ``gateway_credit_outbox_depth`` gauge)."""
        depth: int = await self._read("outbox_depth")
        OUTBOX_DEPTH.set(depth)
        return depth

    async def overdue_holds(self, *, grace_s: float) -> int:
        """Pending holds more than ``grace_s`` past their expiry (the sweeper is stuck or behind)."""
        return await self._read("overdue_holds", cutoff=self._clock() - grace_s)  # type: ignore[no-any-return]

    async def settle_burn(self, *, key: str, generation_ids: list[str], tx_id: str) -> Entry:
        if not isinstance(generation_ids, list) or not 1 <= len(generation_ids) <= MAX_SETTLE_BATCH:
            raise LedgerInputError(f"generation_ids must be a list of 1 to {MAX_SETTLE_BATCH} ids")
        ids = [check_id("generation_id", g) for g in generation_ids]
        if len(set(ids)) != len(ids):
            raise LedgerInputError("generation_ids contains duplicates")
        outcome = await self._write("settle_burn", key=check_key(key), generation_ids=ids,
                                    tx_id=check_id("tx_id", tx_id))
        PURCHASES.labels("burn_settle", "replayed" if outcome.replayed else "written").inc()
        result: Entry = outcome.value
        return result

    # -- invariants --

    async def reconcile(self) -> ReconcileReport:
        report = evaluate(await self._reconcile_rows())
        RECONCILE_BREACHES.set(len(report.breaches))
        return report
