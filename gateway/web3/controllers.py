"""HTTP surface of the web3 domain: wallet sign-in, config, balances, quotes, and the seed's confirm call."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.accounts.principal import Principal
from gateway.web3.auth import WalletAuthService
from gateway.web3.deps import provide_quotes, provide_seed_flow, provide_wallet_auth
from gateway.web3.quotes import QuoteService
from gateway.web3.schemas import (
    ConfirmGenerationRequest,
    ConfirmRequest,
    QuoteRequest,
    SubmitRequest,
    VerifyRequest,
)
from gateway.web3.seed import SeedWalletFlow

__all__ = ["ConfirmGenerationController", "QuoteController", "WalletAuthController", "WalletController"]

QuoteId = Annotated[str, PathParameter(max_length=200)]
Address = Annotated[str, PathParameter(max_length=200)]


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class WalletAuthController(Controller):
    path = "/v1/auth/wallet"
    tags = ["web3"]
    dependencies = {"wallet_auth": Provide(provide_wallet_auth)}

    @get("/challenge", summary="A one-time message for CIP-30 signData (hex payload, readable when decoded)")
    async def challenge(self, wallet_auth: NamedDependency[WalletAuthService], request: Request[Any, Any, Any],
                        address: Annotated[str, QueryParameter(max_length=200)]) -> dict[str, str]:
        return await wallet_auth.challenge(address, _client(request))

    @post("/verify", status_code=200,
          summary="Check signData over the challenge; a session for the address (linked to the bearer's account)")
    async def verify(self, data: JSONBody[VerifyRequest], wallet_auth: NamedDependency[WalletAuthService],
                     request: Request[Any, Any, Any], optional_principal: NamedDependency[Principal | None]) -> Any:
        return await wallet_auth.verify(data.address, data.signature, data.key, _client(request),
                                        link_to=optional_principal)


class WalletController(Controller):
    path = "/v1/wallets"
    tags = ["web3"]
    dependencies = {"quotes": Provide(provide_quotes)}

    @get("/{address:str}/balance", summary="$CREATE (policy id + asset name) and ADA at the address, via the indexer")
    async def balance(self, address: Address, quotes: NamedDependency[QuoteService]) -> dict[str, Any]:
        return await quotes.balance(address)


class QuoteController(Controller):
    path = "/v1/web3"
    tags = ["web3"]
    dependencies = {"quotes": Provide(provide_quotes)}

    @get("/config", summary="What a page needs to show the price and check a payment itself")
    async def config(self, quotes: NamedDependency[QuoteService]) -> dict[str, Any]:
        return quotes.public_config()

    @post("/quotes", status_code=201, summary="An unsigned tx paying the price in $CREATE (402 when short)")
    async def create(self, data: JSONBody[QuoteRequest], quotes: NamedDependency[QuoteService],
                     optional_principal: NamedDependency[Principal | None]) -> dict[str, Any]:
        owner = (optional_principal.owner if optional_principal is not None
                 else f"address:{quotes.address(data.address).bech32}")
        return await quotes.create(owner=owner, address_text=data.address, prompt=data.prompt, params=data.params,
                                   utxos_hex=data.utxos)

    @get("/quotes/{quote_id:str}", summary="Where a quote stands: state, tx id, image URLs once released")
    async def status(self, quote_id: QuoteId, quotes: NamedDependency[QuoteService],
                     optional_principal: NamedDependency[Principal | None]) -> dict[str, Any]:
        return await quotes.status(quote_id, optional_principal)

    @post("/quotes/{quote_id:str}/submit", status_code=202,
          summary="Splice signTx's witnesses into the quote's original bytes and submit it")
    async def submit(self, quote_id: QuoteId, data: JSONBody[SubmitRequest], quotes: NamedDependency[QuoteService],
                     optional_principal: NamedDependency[Principal | None]) -> dict[str, Any]:
        return await quotes.submit(quote_id, data.witness_set, optional_principal)

    @post("/quotes/{quote_id:str}/confirm", status_code=202,
          summary="Follow a tx the wallet submitted itself; images are released at depth")
    async def confirm(self, quote_id: QuoteId, data: JSONBody[ConfirmRequest], quotes: NamedDependency[QuoteService],
                      optional_principal: NamedDependency[Principal | None]) -> dict[str, Any]:
        return await quotes.confirm(quote_id, data.tx_id, optional_principal)


class ConfirmGenerationController(Controller):
    path = "/api/confirm-generation"
    tags = ["seed"]
    dependencies = {"seed": Provide(provide_seed_flow)}

    @post("", summary="Seed-compatible: {txId, prompt | quoteId} → {imageUrls} once paid at depth (202 before)")
    async def confirm(self, data: JSONBody[ConfirmGenerationRequest], seed: NamedDependency[SeedWalletFlow],
                      optional_principal: NamedDependency[Principal | None]) -> Response[dict[str, Any]]:
        status, body = await seed.confirm_generation(data, optional_principal)
        return Response(body, status_code=status)
