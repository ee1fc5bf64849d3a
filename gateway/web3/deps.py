"""Litestar providers of the web3 domain's services (503 while web3 is not configured)."""

from __future__ import annotations

from litestar.datastructures import State

from gateway.web3.auth import WalletAuthService
from gateway.web3.errors import ChainUnavailable
from gateway.web3.quotes import QuoteService
from gateway.web3.seed import SeedWalletFlow

__all__ = ["provide_quotes", "provide_seed_flow", "provide_wallet_auth"]

NOT_CONFIGURED = ("Wallet payments are not enabled on this gateway (set GATEWAY_WEB3_PAY_TO_ADDRESS,"
                  " GATEWAY_ASSET_POLICY_ID and GATEWAY_ASSET_NAME_HEX)")


def _get(state: State, kind: type) -> object:
    service = state.container.find(kind)
    if service is None:
        raise ChainUnavailable(NOT_CONFIGURED, code="web3_disabled")
    return service


async def provide_quotes(state: State) -> QuoteService:
    service = _get(state, QuoteService)
    assert isinstance(service, QuoteService)
    return service


async def provide_wallet_auth(state: State) -> WalletAuthService:
    service = _get(state, WalletAuthService)
    assert isinstance(service, WalletAuthService)
    return service


async def provide_seed_flow(state: State) -> SeedWalletFlow:
    service = _get(state, SeedWalletFlow)
    assert isinstance(service, SeedWalletFlow)
    return service
