"""``PaidGenerator`` over the generations domain: the job runner generates, our payment gates the images.

Imported lazily by ``gateway.web3.domain`` so the web3 domain still installs (wallet sign-in,
quotes, balances) in a build without the generations domain; confirm then answers "not installed".
"""

from __future__ import annotations

from typing import Any

from gateway.accounts.principal import Principal
from gateway.generations.schemas import GenerationRequest
from gateway.generations.services import GenerationService
from gateway.lib.errors import GatewayError
from gateway.web3.payment import PaymentLike

__all__ = ["GenerationsPaidGenerator"]


def _principal(owner: str) -> Principal:
    kind, _, subject = owner.partition(":")
    if kind == "user":
        return Principal(kind="user", subject=subject)
    return Principal(kind="wallet", subject=subject)  # "wallet:addr…" or an anonymous "address:addr…" quote


class GenerationsPaidGenerator:
    def __init__(self, generations: GenerationService) -> None:
        self.generations = generations

    async def run(self, *, owner: str, prompt: str, params: dict[str, Any], payment: PaymentLike) -> list[str]:
        principal = _principal(owner)
        request = GenerationRequest(prompt=prompt)
        key = f"web3:{payment.quote.id}"  # type: ignore[attr-defined]
        row = await self.generations.create(principal, request, key, payment=lambda _generation_id: payment)
        await self.generations.wait(row.id)
        final = await self.generations.get(principal, row.id)
        if final.status != "succeeded":
            error = GatewayError(final.error or "the generation failed", code=final.error_code or "generation_failed")
            error.status = 502
            raise error
        return [image.url for image in self.generations.view(final).images]
