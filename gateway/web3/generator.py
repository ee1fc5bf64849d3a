"""``PaidGenerator`` over the generations domain: its job runner generates (progress on the same SSE
stream as card generations), our ``QuotePayment`` decides when the images are released.

Imported lazily by ``gateway.web3.domain`` so the web3 domain still installs (wallet sign-in,
quotes, balances) in a build without the generations domain; confirm then fails "not installed".
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from gateway.accounts.principal import Principal
from gateway.generations.schemas import GenerationParams, GenerationRequest
from gateway.generations.services import GenerationService
from gateway.lib.errors import ClientError, GatewayError
from gateway.web3.payment import PaymentLike

__all__ = ["GenerationsPaidGenerator"]


def _principal(owner: str) -> Principal:
    kind, _, subject = owner.partition(":")
    if kind == "user":
        return Principal(kind="user", subject=subject)
    return Principal(kind="wallet", subject=subject)  # "wallet:addr…", or an anonymous quote's "address:addr…"


def _request(prompt: str, params: dict[str, Any]) -> GenerationRequest:
    try:
        parsed = msgspec.convert(params, GenerationParams)
        request = GenerationRequest(prompt=prompt, params=parsed)
        msgspec.json.decode(msgspec.json.encode(request), type=GenerationRequest)  # the Meta bounds
    except msgspec.ValidationError as exc:
        raise ClientError(f"params: {exc}", code="invalid_params") from None
    if parsed.num_images != 1:
        raise ClientError("a wallet payment buys one image: params.num_images must be 1", code="invalid_params")
    return request


class GenerationsPaidGenerator:
    def __init__(self, generations: GenerationService) -> None:
        self.generations = generations

    def validate(self, prompt: str, params: dict[str, Any]) -> None:
        """Refuse at quote time what inference would refuse after the artist paid."""
        _request(prompt, params)

    async def run(self, *, owner: str, prompt: str, params: dict[str, Any], payment: PaymentLike) -> list[str]:
        principal = _principal(owner)
        quote_id = payment.quote.id  # type: ignore[attr-defined]
        # One generation per run: the quote runner runs a quote once at a time, and after a restart the
        # interrupted generation (left to its payment domain by the generations recovery) is replaced.
        key = f"web3:{quote_id}:{secrets.token_hex(4)}"
        def bound(generation_id: str) -> Any:
            bind = getattr(payment, "bind_generation", None)
            return bind(generation_id, self.generations.events_url(generation_id)) if bind else payment

        row = await self.generations.create(principal, _request(prompt, params), key, payment=bound)
        await self.generations.wait(row.id)
        final = await self.generations.get(principal, row.id)
        if final.status != "succeeded":
            error = GatewayError(final.error or "the generation failed", code=final.error_code or "generation_failed")
            error.status = 502
            raise error
        return [image.url for image in self.generations.view(final).images]
