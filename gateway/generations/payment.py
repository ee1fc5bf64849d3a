"""How a generation is paid for: the ``Payment`` protocol and the card path's ``CreditHoldPayment``.

The job runner drives one ``Payment`` per generation, in this order:

1. ``authorize()`` before any work — raises a 402 (no credits / no tokens) or 403 (frozen) problem;
2. the generation runs;
3. ``wait_until_releasable()`` before any image is shown — the card path returns at once; the web3
   path waits until the chain proves the artist's payment at depth (generation ran speculatively);
4. ``capture(delivered)`` with the indices of the images actually delivered (flagged or failed ones
   are not in it), or ``release(reason)`` when nothing is delivered (failure, safety filter, timeout,
   cancel). Both are idempotent; after a crash the runner's recovery calls them again.

Web3 also plugs into the seed's ``POST /api/generate-art``: without a bearer token and with an
``address`` in the body, that route calls the ``WalletGenerateArt`` service the web3 domain provides
(``container.provide(WalletGenerateArt, …)``), passing the decoded JSON body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gateway.accounts.principal import Principal
from gateway.credits.ledger import HoldNotFound, HoldResolved, Ledger

__all__ = ["CreditHoldPayment", "Payment", "WalletGenerateArt", "charge_id"]


class Payment(Protocol):
    kind: str  # "credits", "web3", …: stored on the generation

    async def authorize(self) -> None: ...

    async def wait_until_releasable(self) -> None: ...

    async def capture(self, delivered: Sequence[int]) -> None: ...

    async def release(self, reason: str) -> None: ...


class WalletGenerateArt(Protocol):
    """The web3 domain's answer to ``POST /api/generate-art {prompt, address}`` (no bearer token)."""

    async def generate_art(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]: ...


def charge_id(generation_id: str, index: int) -> str:
    """The ledger id of image ``index``'s credit: the generation id itself for the first image (so a
    one-image generation's hold, burn intent and receipt all carry the generation id), ``<id>.<i>``
    for the others."""
    return generation_id if index == 0 else f"{generation_id}.{index}"


class CreditHoldPayment:
    """One credit per requested image, held on the ledger, posted per delivered image, else voided."""

    kind = "credits"

    def __init__(self, ledger: Ledger, *, user_id: str, generation_id: str, images: int, timeout_s: float) -> None:
        self.ledger = ledger
        self.user_id = user_id
        self.generation_id = generation_id
        self.images = images
        self.timeout_s = timeout_s

    @property
    def charge_ids(self) -> list[str]:
        return [charge_id(self.generation_id, i) for i in range(self.images)]

    async def authorize(self) -> None:
        taken: list[str] = []
        try:
            for hold_id in self.charge_ids:
                await self.ledger.hold(user_id=self.user_id, generation_id=hold_id, timeout_s=self.timeout_s)
                taken.append(hold_id)
        except BaseException:
            for hold_id in taken:
                await self.ledger.void(hold_id, reason="authorization_incomplete")
            raise

    async def wait_until_releasable(self) -> None:
        return None

    async def capture(self, delivered: Sequence[int]) -> None:
        """Post the delivered images' holds (HoldExpired when the hold timed out first), void the rest."""
        keep = set(delivered)
        for index, hold_id in enumerate(self.charge_ids):
            if index not in keep:
                await self.ledger.void(hold_id, reason="not_delivered")
        for index, hold_id in enumerate(self.charge_ids):
            if index in keep:
                await self.ledger.post(hold_id)

    async def release(self, reason: str) -> None:
        for hold_id in self.charge_ids:
            try:
                await self.ledger.void(hold_id, reason=reason)
            except (HoldResolved, HoldNotFound):
                # Already posted (an earlier capture went through), or never taken (a crash between
                # recording the generation and holding): nothing to release.
                continue
