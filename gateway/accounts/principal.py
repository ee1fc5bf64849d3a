"""Who is calling: the contract between accounts (which authenticates) and every other domain.

A principal is an artist signed in with email + password (``kind="user"``) or a wallet session from
CIP-30 ``signData`` (``kind="wallet"``, see ``gateway.web3``). ``owner`` is the string stored on
every owned resource (generations, images, receipts, quotes); a resource whose owner differs from the
caller's is answered 404, never 403, so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "wallet"]
    subject: str  # user id, or the wallet's bech32 address
    email: str = ""
    linked_user_id: str = ""  # a wallet session linked to a card account

    @property
    def owner(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def user_id(self) -> str:
        """The card account whose credits this principal spends ('' when none)."""
        return self.subject if self.kind == "user" else self.linked_user_id
