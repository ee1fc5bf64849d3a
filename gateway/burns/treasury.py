"""``TreasuryGuard``: whether the custodial wallet can still back new card generations.

The burner refreshes it from the chain every planning round; the card path consults it before it
holds a credit (``container.find(TreasuryGuard)``), so a studio whose treasury ran dry answers 503
instead of selling credits no token backs. With the burner off the guard never refuses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.burns.metrics import TREASURY_LOVELACE, TREASURY_LOW, TREASURY_TOKENS
from gateway.lib.errors import ServiceUnavailable

__all__ = ["TreasuryGuard", "TreasuryLow", "TreasuryReading"]


class TreasuryLow(ServiceUnavailable):
    code = "treasury_low"


@dataclass(frozen=True)
class TreasuryReading:
    tokens_free: int  # $CREATE on chain minus what unconfirmed-or-unbatched intents will burn
    lovelace: int
    at: float


class TreasuryGuard:
    def __init__(self, *, min_tokens: int, min_lovelace: int, enabled: bool = True) -> None:
        self.min_tokens = min_tokens
        self.min_lovelace = min_lovelace
        self.enabled = enabled
        self.reading: TreasuryReading | None = None

    def update(self, *, tokens_free: int, lovelace: int) -> None:
        self.reading = TreasuryReading(tokens_free, lovelace, time.time())
        TREASURY_TOKENS.set(tokens_free)
        TREASURY_LOVELACE.set(lovelace)
        TREASURY_LOW.set(1 if self.low_reason() else 0)

    def low_reason(self) -> str:
        """'' while the treasury is above both thresholds (or not read yet), else what is short."""
        if not self.enabled or self.reading is None:
            return ""
        r = self.reading
        if r.tokens_free < self.min_tokens:
            return f"the treasury holds {r.tokens_free} unpromised $CREATE, under the {self.min_tokens} threshold"
        if r.lovelace < self.min_lovelace:
            return f"the treasury holds {r.lovelace} lovelace, under the {self.min_lovelace} threshold"
        return ""

    def require(self) -> None:
        """Raise TreasuryLow (503) when new card generations cannot be backed by a burn."""
        reason = self.low_reason()
        if reason:
            raise TreasuryLow(f"Card generations are paused: {reason}. The operator must top up the custodial"
                              " wallet.", retry_after_s=60)
