"""The seed's two calls over the quote service, so its frontend snippet runs unchanged.

``POST /api/generate-art {prompt, address}`` (no bearer token; the generations domain routes it here
through ``WalletGenerateArt``) → 402 or ``{transactionBlueprint: {…quote…}}``. The page signs and
submits the blueprint's ``tx_cbor`` itself, then ``POST /api/confirm-generation {txId, prompt | quoteId}``
→ ``{imageUrls}`` once the chain proves the payment at depth (or 202 ``{state, …}`` while it is not
deep yet: call again, it is idempotent).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from gateway.accounts.principal import Principal
from gateway.lib.errors import ClientError, GatewayError, NotFound
from gateway.web3.chain import TxNotFound
from gateway.web3.errors import PaymentNotValid, QuoteExpired, Redeemed
from gateway.web3.quotes import QuoteService
from gateway.web3.rules import quote_id_of
from gateway.web3.schemas import MAX_PROMPT_CHARS, ConfirmGenerationRequest
from gateway.web3.store import QuoteRow

__all__ = ["SeedWalletFlow"]

_FAILURES: dict[str, type[GatewayError]] = {
    "quote_expired": QuoteExpired, "payment_not_valid": PaymentNotValid, "already_redeemed": Redeemed,
}
_FIND_POLL_S = 0.5


def failure_of(quote: QuoteRow) -> GatewayError:
    code, _, detail = (quote.error or "generation_failed: the generation failed").partition(": ")
    kind = _FAILURES.get(code)
    if kind is not None:
        return kind(detail)
    error = GatewayError(detail or "the generation failed", code=code)
    error.status, error.title = 502, "Generation failed"
    return error


class SeedWalletFlow:
    """``WalletGenerateArt`` for the generations domain, and ``/api/confirm-generation``."""

    def __init__(self, quotes: QuoteService, *, confirm_wait_s: float) -> None:
        self.quotes = quotes
        self.confirm_wait_s = confirm_wait_s

    async def generate_art(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
        prompt, address = body.get("prompt"), body.get("address")
        if not isinstance(prompt, str) or not 0 < len(prompt) <= MAX_PROMPT_CHARS:
            raise ClientError(f"prompt must be 1..{MAX_PROMPT_CHARS} characters", code="invalid_prompt")
        if not isinstance(address, str):
            raise ClientError("address must be the wallet's address", code="invalid_address")
        utxos = body.get("utxos")
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        owner = principal.owner if principal is not None else f"address:{self.quotes.address(address).bech32}"
        quote = await self.quotes.create(owner=owner, address_text=address, prompt=prompt, params=params or {},
                                         utxos_hex=utxos if isinstance(utxos, list) else None)
        return {"transactionBlueprint": quote}

    async def _find_quote(self, request: ConfirmGenerationRequest, principal: Principal | None,
                          deadline: float) -> QuoteRow:
        if request.quoteId:
            return await self.quotes.status_row(request.quoteId, principal)
        if not request.prompt:  # the tx id is public on chain: it alone must not open someone's quote
            raise ClientError("send the prompt (or the quoteId) with the txId", code="prompt_required")
        while True:  # by the tx id we built, else by the quote id the tx carries once it is in a block
            quote = await self.quotes.store.quote_by_tx(request.txId)
            if quote is None:
                try:
                    found = quote_id_of(await self.quotes.chain.transaction(request.txId))
                except TxNotFound:
                    found = None
                if found is not None:
                    quote = await self.quotes.store.quote_by_ref(found)
            if quote is not None:
                if request.prompt != quote.prompt:
                    raise NotFound("no quote for this transaction and prompt", code="quote_not_found")
                return await self.quotes.status_row(quote.id, principal)
            if time.monotonic() >= deadline:
                raise NotFound("no quote for this transaction (send quoteId, or wait until it is in a block)",
                               code="quote_not_found")
            await asyncio.sleep(_FIND_POLL_S)

    async def confirm_generation(self, request: ConfirmGenerationRequest,
                                 principal: Principal | None) -> tuple[int, dict[str, Any]]:
        deadline = time.monotonic() + self.confirm_wait_s
        quote = await self._find_quote(request, principal, deadline)
        if not (quote.state == "delivered" and quote.paid_tx_id == request.txId):
            await self.quotes.confirm(quote.id, request.txId, principal)
            quote = await self.quotes.wait_for_images(quote.id, principal, max(0.0, deadline - time.monotonic()))
        if quote.state == "delivered" and quote.image_urls is not None:
            return 200, {"imageUrls": quote.image_urls, "quoteId": quote.id, "txId": request.txId}
        if quote.state in ("failed", "expired"):
            raise failure_of(quote)
        return 202, msgspec.to_builtins(self.quotes.view(quote))
