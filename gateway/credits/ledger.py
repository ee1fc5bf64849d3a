"""The credits ledger's contract: what billing, generations, burns and reconcile may ask of it.

Implementations: SQLite (``gateway.credits.sqlite_store``, the embedded default) and PostgreSQL
(replicas, later). Both give the same guarantees, documented in ``gateway/credits/README.md``:
append-only double-entry, integer amounts, an idempotency key under a unique constraint on every
entry (a retry returns the first result), two-phase holds that resolve exactly once, and the burn
intent written in the same transaction as the post that spends the credit.

Account names: ``user:{user_id}``, ``stripe:clearing``, ``burn:outbox``, ``burn:settled``, ``refund``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.lib.errors import Conflict, Forbidden, NotFound, PaymentRequired

__all__ = [
    "INSUFFICIENT_CREDITS_MESSAGE",
    "AccountFrozen",
    "Balance",
    "BurnIntent",
    "Entry",
    "Hold",
    "HoldExpired",
    "HoldNotFound",
    "HoldResolved",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Ledger",
    "ReconcileReport",
]

INSUFFICIENT_CREDITS_MESSAGE = "Insufficient credits. Please purchase more."

HoldState = Literal["pending", "posted", "voided"]


class InsufficientCredits(PaymentRequired):
    code = "insufficient_credits"

    def __init__(self, detail: str = INSUFFICIENT_CREDITS_MESSAGE, **kw: Any) -> None:
        super().__init__(detail, **kw)


class AccountFrozen(Forbidden):
    code = "account_frozen"


class IdempotencyConflict(Conflict):
    """The idempotency key (or generation id) was used before for a different operation or amount."""

    code = "idempotency_conflict"


class HoldNotFound(NotFound):
    code = "hold_not_found"


class HoldResolved(Conflict):
    """The hold was already resolved the other way (posting a voided hold, voiding a posted one)."""

    code = "hold_resolved"


class HoldExpired(HoldResolved):
    """The hold timed out (and was or is now voided): it can no longer be posted."""

    code = "hold_expired"


@dataclass(frozen=True)
class Balance:
    user_id: str
    credited: int  # posted credits into user:{id} (purchases), minus reversals
    spent: int  # posted debits (generations delivered)
    pending: int  # open holds
    available: int  # credited - spent - pending (may be < 0 only after a refund/dispute)
    frozen: bool
    frozen_reason: str = ""


@dataclass(frozen=True)
class Hold:
    generation_id: str
    user_id: str
    amount: int
    state: HoldState
    created_at: float  # unix seconds
    expires_at: float
    resolved_at: float | None = None
    reason: str = ""  # why it was voided ("inference_failed", "safety_filtered", "expired", …)


@dataclass(frozen=True)
class Entry:
    id: int
    key: str  # idempotency key, unique
    kind: str  # "purchase", "reversal", "hold", "post", "void", "burn_settle", …
    debit_account: str
    credit_account: str
    amount: int
    created_at: float
    reference: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BurnIntent:
    """One spent credit waiting in (or drained from) the outbox. ``seq`` orders the outbox."""

    seq: int
    generation_id: str
    user_id: str
    amount: int
    created_at: float


@dataclass(frozen=True)
class ReconcileReport:
    ok: bool
    breaches: list[str]
    totals: dict[str, int]


class Ledger(Protocol):
    """Every method is atomic; every write is idempotent by its key or generation id."""

    async def balance(self, user_id: str) -> Balance: ...

    async def credit_purchase(self, *, user_id: str, credits: int, key: str,
                              reference: dict[str, Any] | None = None) -> Entry:
        """``stripe:clearing`` → ``user:{id}``. ``key`` is per PaymentIntent (``stripe:pi:{id}``) so the
        synchronous confirm and every webhook delivery credit once; a replay returns the first entry."""
        ...

    async def reverse_purchase(self, *, user_id: str, credits: int, key: str,
                               reference: dict[str, Any] | None = None) -> Entry:
        """``user:{id}`` → ``refund`` (refunds, lost disputes). May take the balance below zero."""
        ...

    async def set_frozen(self, user_id: str, frozen: bool, *, reason: str, key: str) -> Balance:
        """Freeze (no new holds; AccountFrozen) or unfreeze; idempotent by ``key``."""
        ...

    async def hold(self, *, user_id: str, generation_id: str, amount: int = 1,
                   timeout_s: float) -> Hold:
        """Reserve ``amount``; InsufficientCredits (402) when available < amount, AccountFrozen (403)
        when frozen. Idempotent by generation id: a second call returns the existing hold."""
        ...

    async def post(self, generation_id: str) -> Hold:
        """Spend the held credit and write its BurnIntent in the same transaction. Posting a posted
        hold returns it; a voided or expired one raises HoldResolved / HoldExpired."""
        ...

    async def void(self, generation_id: str, *, reason: str) -> Hold:
        """Release the hold. Voiding a voided hold returns it; a posted one raises HoldResolved."""
        ...

    async def get_hold(self, generation_id: str) -> Hold | None: ...

    async def void_expired(self, *, now: float | None = None, limit: int = 1000) -> int:
        """The sweeper: void pending holds past ``expires_at``; returns how many."""
        ...

    async def outbox(self, *, after_seq: int = 0, limit: int = 1000) -> list[BurnIntent]:
        """Burn intents with ``seq > after_seq``, oldest first (the burner tracks which it batched)."""
        ...

    async def settle_burn(self, *, key: str, generation_ids: list[str], tx_id: str) -> Entry:
        """A confirmed burn: ``burn:outbox`` → ``burn:settled`` for those intents; idempotent by key."""
        ...

    async def reconcile(self) -> ReconcileReport:
        """Entries sum to zero; no user below zero except through a reversal; spent == outbox + settled."""
        ...
