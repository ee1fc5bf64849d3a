"""Burns domain: the custodial burner, receipts, the public burn list, and the treasury guard.

With ``GATEWAY_BURN_ENABLED`` off (the default) the tables, routes and a guard that never refuses are
installed, but no burner runs and nothing talks to the signer.
"""

from __future__ import annotations

from typing import Any

from common.grpcutil import TlsFiles
from common.logging import get_logger
from common.settings import ConfigError
from gateway.burns import planner
from gateway.burns.burner import Burner
from gateway.burns.controllers import BurnsController, ReceiptController
from gateway.burns.services import BurnService
from gateway.burns.signer import GrpcSigner, SignerClient
from gateway.burns.store import MIGRATIONS
from gateway.burns.treasury import TreasuryGuard
from gateway.credits.ledger import Ledger
from gateway.generations.services import GenerationService
from gateway.server.container import Container, HealthResult
from gateway.settings import GatewaySettings
from gateway.web3.chain import Chain, GrpcChain

__all__ = ["MIGRATIONS", "ROUTES", "install", "validate_settings"]

log = get_logger("gateway.burns")
ROUTES: list[Any] = [ReceiptController, BurnsController]
FAILING_ATTEMPTS = 5  # a batch failing this many times in a row makes /health degraded


def validate_settings(s: GatewaySettings) -> None:
    if not 1 <= s.burn_batch_max <= 10_000:
        raise ConfigError("GATEWAY_BURN_BATCH_MAX: 1..10000")
    if not 1 <= s.burn_lanes <= 64:
        raise ConfigError("GATEWAY_BURN_LANES: 1..64")
    if s.burn_confirmations < 1:
        raise ConfigError("GATEWAY_BURN_CONFIRMATIONS: at least 1 (the block itself)")
    if s.burn_ttl_slots < 5:
        raise ConfigError("GATEWAY_BURN_TTL_SLOTS: at least 5 (minutes are the sane range; tests use seconds)")
    if s.burn_lease_s < 5 * s.burn_poll_interval_s or s.burn_lease_s < 2 * s.burn_call_timeout_s:
        raise ConfigError("GATEWAY_BURN_LEASE_S: at least 5 x GATEWAY_BURN_POLL_INTERVAL_S and 2 x"
                          " GATEWAY_BURN_CALL_TIMEOUT_S (a round must end well within a lease)")
    if s.burn_batch_wait_s < 0 or s.burn_poll_interval_s <= 0 or s.burn_retry_max_s < 1:
        raise ConfigError("GATEWAY_BURN_BATCH_WAIT_S >= 0, GATEWAY_BURN_POLL_INTERVAL_S > 0, "
                          "GATEWAY_BURN_RETRY_MAX_S >= 1")


def _chain(container: Container) -> tuple[Chain, bool]:
    """A Chain provided by a test, else the burner's own client (not provided: the web3 domain, installed
    later, builds the shared one with its own timeouts). The flag says whether it is ours to close."""
    chain: Chain | None = container.find(Chain)  # type: ignore[type-abstract]
    if chain is not None:
        return chain, False
    return GrpcChain(container.settings.indexer_target, timeout_s=container.settings.burn_call_timeout_s), True


async def install(container: Container) -> None:
    settings = container.settings
    validate_settings(settings)
    guard = container.find(TreasuryGuard) or container.provide(TreasuryGuard, TreasuryGuard(
        min_tokens=settings.burn_treasury_min_tokens, min_lovelace=settings.burn_treasury_min_lovelace,
        enabled=settings.burn_enabled))
    generations = container.find(GenerationService)
    if generations is not None:  # a guard that is off (burner off) never refuses
        generations.card_backing_check = guard.require
    chain, own_chain = _chain(container) if settings.burn_enabled else (
        container.find(Chain), False)  # type: ignore[type-abstract]
    service = container.find(BurnService) or container.provide(BurnService, BurnService(container.db, chain))
    service.find_chain = lambda: container.find(Chain)  # type: ignore[type-abstract]
    if not settings.burn_enabled:
        return
    signer: SignerClient | None = container.find(SignerClient)  # type: ignore[type-abstract]
    if signer is None:
        tls = (TlsFiles(settings.signer_tls_cert, settings.signer_tls_key, settings.signer_tls_ca)
               if settings.signer_tls_ca else None)  # a host:port signer (Kubernetes): mTLS, checked in settings
        signer = container.provide(SignerClient, GrpcSigner(  # type: ignore[type-abstract]
            settings.signer_target, timeout_s=settings.burn_call_timeout_s, tls=tls))
    ledger = container.get(Ledger)  # type: ignore[type-abstract]
    assert chain is not None
    burner = Burner(settings, container.db, ledger, chain, signer, guard)
    container.provide(Burner, burner)
    burner.on_identity = lambda identity: setattr(service, "identity", identity)

    async def run() -> None:
        await burner.run()

    async def health() -> HealthResult:
        low = guard.low_reason()
        if low:
            return HealthResult(True, f"treasury low: {low}", degraded=True)
        if burner.last_error:
            return HealthResult(True, f"burner retrying: {burner.last_error[:300]}", degraded=True)
        failing = await container.db.read(lambda c: planner.failing_batches(c, FAILING_ATTEMPTS))
        if failing:
            first = failing[0]
            return HealthResult(True, f"{len(failing)} burn batch(es) failing repeatedly, e.g. {first[0]}"
                                      f" ({first[1]}): {first[2][:200]}", degraded=True)
        if burner.rounds == 0:
            return HealthResult(True, "burner starting", degraded=True)
        return HealthResult(True, "ok")

    async def stop() -> None:
        assert signer is not None and chain is not None
        await signer.close()
        if own_chain:
            await chain.close()

    container.add_background_task("burner", run)
    container.add_health_check("burns", health)
    container.on_shutdown(stop)
