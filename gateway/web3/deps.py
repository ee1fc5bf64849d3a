"""Litestar providers of the web3 domain's services (503 while web3 is not configured)."""

from __future__ import annotations

from typing import TypeVar

from litestar.datastructures import State

from gateway.server.container import Container
from gateway.web3.auth import WalletAuthService
from gateway.web3.errors import ChainUnavailable
from gateway.web3.quotes import QuoteService
from gateway.web3.seed import SeedWalletFlow

__all__ = ["provide_quotes", "provide_seed_flow", "provide_wallet_auth"]

NOT_CONFIGURED = ("Wallet payments are not enabled on this gateway (set GATEWAY_WEB3_PAY_TO_ADDRESS,"
                  " GATEWAY_ASSET_POLICY_ID and GATEWAY_ASSET_NAME_HEX)")


T = TypeVar("T")


def _get(state: State, kind: type[T]) -> T:
    container: Container = state.container
    service = container.find(kind)
    if service is None:
        raise ChainUnavailable(NOT_CONFIGURED, code="web3_disabled")
    return service


async def provide_quotes(state: State) -> QuoteService:
    return _get(state, QuoteService)


async def provide_wallet_auth(state: State) -> WalletAuthService:
    return _get(state, WalletAuthService)


async def provide_seed_flow(state: State) -> SeedWalletFlow:
    return _get(state, SeedWalletFlow)
