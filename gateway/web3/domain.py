"""Web3 domain: pay 1 $CREATE from your own CIP-30 wallet, verified on chain (DESIGN §3).

Installs only when configured (``GATEWAY_WEB3_PAY_TO_ADDRESS`` and the asset's policy id and name);
otherwise its routes answer 503 ``web3_disabled``. The ``Chain`` (indexer client) is shared: a domain
installed earlier may have provided it, else this one opens it on ``GATEWAY_INDEXER_TARGET``.
"""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlparse

from common.cardano import AssetId
from common.logging import get_logger
from common.settings import ConfigError
from gateway.accounts.ratelimit import RateLimiter
from gateway.accounts.tokens import TokenService
from gateway.server.container import Container, HealthResult
from gateway.settings import GatewaySettings
from gateway.web3.address import network_id_of, parse_address
from gateway.web3.auth import WalletAuthService
from gateway.web3.chain import Chain, GrpcChain
from gateway.web3.controllers import (
    ConfirmGenerationController,
    QuoteController,
    WalletAuthController,
    WalletController,
)
from gateway.web3.errors import InvalidAddress
from gateway.web3.payment import PaidGenerator, QuoteRunner
from gateway.web3.quotes import QuoteService, Web3Config
from gateway.web3.seed import SeedWalletFlow
from gateway.web3.store import MIGRATIONS, Web3Store

__all__ = ["MIGRATIONS", "ROUTES", "install", "web3_config"]

log = get_logger("gateway.web3")


def web3_config(settings: GatewaySettings) -> Web3Config | None:
    """The wallet path's configuration, None when it is not enabled; ConfigError on a bad value."""
    if not settings.web3_pay_to_address:
        return None
    network_id = network_id_of(settings.network)
    try:
        pay_to = parse_address(settings.web3_pay_to_address, network_id)
    except InvalidAddress as exc:
        raise ConfigError(f"GATEWAY_WEB3_PAY_TO_ADDRESS: {exc.detail}") from None
    try:
        asset = AssetId(settings.asset_policy_id, settings.asset_name_hex)
    except ValueError as exc:
        raise ConfigError(f"GATEWAY_ASSET_POLICY_ID / GATEWAY_ASSET_NAME_HEX: {exc} (the wallet path needs both)"
                          ) from None
    if settings.web3_price < 1:
        raise ConfigError("GATEWAY_WEB3_PRICE: at least 1")
    if not 1 <= settings.web3_min_confirmations <= 2160:
        raise ConfigError("GATEWAY_WEB3_MIN_CONFIRMATIONS: 1..2160 (k)")
    if not 60 <= settings.web3_quote_ttl_s <= 7200:
        raise ConfigError("GATEWAY_WEB3_QUOTE_TTL_S: 60..7200")
    if not 30 <= settings.web3_challenge_ttl_s <= 3600:
        raise ConfigError("GATEWAY_WEB3_CHALLENGE_TTL_S: 30..3600")
    return Web3Config(network_id, asset, pay_to, settings.web3_price, settings.web3_min_confirmations,
                      settings.web3_quote_ttl_s, settings.web3_confirm_wait_s)


def _generator(container: Container) -> PaidGenerator | None:
    found = container.find(PaidGenerator)  # type: ignore[type-abstract]
    if found is not None:
        return found
    if importlib.util.find_spec("gateway.generations.services") is None:
        return None
    try:
        from gateway.generations.services import GenerationService
        from gateway.web3.generator import GenerationsPaidGenerator
    except ImportError:
        log.warning("web3_generations_unavailable")
        return None
    service = container.find(GenerationService)
    return GenerationsPaidGenerator(service) if service is not None else None


def _provide_seed_hook(container: Container, flow: SeedWalletFlow) -> None:
    """Offer our flow to the generations domain's ``/api/generate-art`` (its ``WalletGenerateArt`` key)."""
    try:
        from gateway.generations.payment import WalletGenerateArt
    except ImportError:
        return
    if container.find(WalletGenerateArt) is None:  # type: ignore[type-abstract]
        container.provide(WalletGenerateArt, flow)  # type: ignore[type-abstract]


def _chain(container: Container) -> Chain:
    chain: Chain | None = container.find(Chain)  # type: ignore[type-abstract]
    if chain is None:
        chain = GrpcChain(container.settings.indexer_target, timeout_s=container.settings.web3_chain_timeout_s)
        container.provide(Chain, chain)  # type: ignore[type-abstract]
        container.on_shutdown(chain.close)

        async def indexer_health() -> HealthResult:
            tip = await chain.tip()
            return HealthResult(tip.connected, f"tip slot {tip.slot}, height {tip.height}", degraded=not tip.connected)

        container.add_health_check("indexer", indexer_health)
    return chain


async def install(container: Container) -> None:
    settings = container.settings
    config = web3_config(settings)
    if config is None:
        log.info("web3_disabled", reason="GATEWAY_WEB3_PAY_TO_ADDRESS is not set")
        return
    chain = _chain(container)
    store = Web3Store(container.db)
    runner = QuoteRunner(store, chain, config.terms, _generator(container))
    quotes = container.find(QuoteService) or container.provide(QuoteService, QuoteService(store, chain, config, runner))
    domain = settings.web3_challenge_domain or urlparse(settings.base_url).netloc
    if container.find(WalletAuthService) is None:
        container.provide(WalletAuthService, WalletAuthService(
            store, container.get(TokenService), domain=domain, network_id=config.network_id,
            ttl_s=settings.web3_challenge_ttl_s, limiter=container.find(RateLimiter)))
    flow = container.find(SeedWalletFlow) or container.provide(
        SeedWalletFlow, SeedWalletFlow(quotes, confirm_wait_s=config.confirm_wait_s))
    _provide_seed_hook(container, flow)
    container.add_background_task("web3-resume", quotes.runner.resume)
    container.on_shutdown(quotes.runner.stop)
    log.info("web3_enabled", pay_to=config.pay_to.bech32, asset=str(config.asset), price=config.price,
             min_confirmations=config.min_confirmations)


ROUTES: list[Any] = [WalletAuthController, WalletController, QuoteController, ConfirmGenerationController]
