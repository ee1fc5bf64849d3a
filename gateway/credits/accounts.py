"""Account names and entry kinds, the vocabulary shared by both backends and ``reconcile``."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BURN_OUTBOX",
    "BURN_SETTLED",
    "ENTRY_KINDS",
    "POSTED_KINDS",
    "REFUND",
    "STRIPE_CLEARING",
    "USER_PREFIX",
    "user_account",
]

USER_PREFIX: Final = "user:"
STRIPE_CLEARING: Final = "stripe:clearing"  # where purchased credits come from (debited by purchases)
BURN_OUTBOX: Final = "burn:outbox"  # spent credits whose burn is not yet confirmed on chain
BURN_SETTLED: Final = "burn:settled"  # spent credits whose burn is confirmed
REFUND: Final = "refund"  # reversed purchases (refunds, lost disputes)

ENTRY_KINDS: Final = ("purchase", "reversal", "hold", "post", "void", "burn_settle")
# Kinds that move posted balances; ``hold`` only moves pending amounts, ``void`` only releases them.
POSTED_KINDS: Final = ("purchase", "reversal", "post", "burn_settle")


def user_account(user_id: str) -> str:
    return USER_PREFIX + user_id
