"""Outcomes and result codes shared by both ledger backends (beyond those of the contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.credits.ledger import Hold, HoldExpired, HoldResolved
from gateway.lib.errors import Conflict, GatewayError, NotFound

__all__ = ["BurnAlreadySettled", "BurnIntentNotFound", "Outcome", "RetryTransaction", "resolved_error"]

T = TypeVar("T")


class BurnIntentNotFound(NotFound):
    code = "burn_intent_not_found"


class BurnAlreadySettled(Conflict):
    code = "burn_already_settled"


class RetryTransaction(Exception):
    """A body saw a state a racing transaction is still changing; the store runs it again (bounded)."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a transaction body returns: the value, whether it was a replay, and an error to raise
    after COMMIT (the transaction's effects are kept)."""

    value: T
    replayed: bool = False
    error: GatewayError | None = None


def resolved_error(existing: Hold, wanted: str) -> GatewayError:
    """The error for acting on a hold that is no longer pending."""
    if existing.state == "voided" and existing.reason == "expired":
        return HoldExpired(f"hold {existing.generation_id!r} expired and was voided; it cannot be {wanted}")
    return HoldResolved(f"hold {existing.generation_id!r} is already {existing.state}; it cannot be {wanted}")
