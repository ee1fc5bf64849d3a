"""Billing domain: credit packs sold by card through Stripe (or the offline Stripe sandbox).

Keys: ``GATEWAY_STRIPE_SECRET_KEY_FILE`` and ``GATEWAY_STRIPE_WEBHOOK_SECRET_FILE``. Without a secret
key, card purchases answer a 503 ``billing_unavailable`` problem that says what to set, and
``/health`` reports billing as degraded (the wallet path and credits already bought keep working);
with ``GATEWAY_REQUIRE_SECRETS`` on (production) a missing key stops the start instead. When
``GATEWAY_STRIPE_API_BASE`` points at the sandbox and no key is set, a sandbox test key is used.
"""

from __future__ import annotations

import asyncio
import functools
import time

from common.logging import get_logger
from common.settings import ConfigError
from gateway.accounts.ratelimit import RateLimiter
from gateway.billing import repository as repo
from gateway.billing.controllers import BillingController, SeedBillingController, WebhookController
from gateway.billing.processor import Billing, StripeBilling
from gateway.billing.repository import MIGRATIONS
from gateway.billing.services import PurchaseService
from gateway.billing.webhooks import WebhookService
from gateway.credits.ledger import Ledger
from gateway.server.container import Container, HealthResult
from gateway.settings import GatewaySettings

__all__ = ["MIGRATIONS", "ROUTES", "SANDBOX_SECRET_KEY", "install", "stripe_billing"]

log = get_logger("gateway.billing")
# The sandbox accepts any sk_test_ key unless it is told to accept only some (STRIPE_SANDBOX_API_KEYS).
# Stripe keeps events (and lets an operator resend them) for 30 days; ids are remembered a little longer.
EVENT_RETENTION_S = 35 * 86_400
PRUNE_INTERVAL_S = 3600.0
SANDBOX_SECRET_KEY = "sk_test_creatorpass_sandbox"  # noqa: S105 (a public placeholder, not a secret)


def stripe_billing(settings: GatewaySettings) -> StripeBilling:
    """The real Stripe client from the settings; ConfigError for what cannot work at all."""
    key = settings.stripe_secret_key
    if key and not key.startswith(("sk_live_", "sk_test_", "rk_live_", "rk_test_")):
        raise ConfigError("GATEWAY_STRIPE_SECRET_KEY_FILE: a Stripe secret key starts with sk_live_ or sk_test_")
    if settings.stripe_webhook_secret and not settings.stripe_webhook_secret.startswith("whsec_"):
        raise ConfigError("GATEWAY_STRIPE_WEBHOOK_SECRET_FILE: a webhook signing secret starts with whsec_")
    if not 0 <= settings.stripe_max_network_retries <= 10:
        raise ConfigError("GATEWAY_STRIPE_MAX_NETWORK_RETRIES: 0..10")
    if not 0 < settings.stripe_timeout_s <= 120:
        raise ConfigError("GATEWAY_STRIPE_TIMEOUT_S: more than 0 and at most 120")
    if not 1 <= settings.purchase_rate_per_minute <= 10_000:
        raise ConfigError("GATEWAY_PURCHASE_RATE_PER_MINUTE: 1..10000")
    if not 10 <= settings.stripe_webhook_tolerance_s <= 3600:
        raise ConfigError("GATEWAY_STRIPE_WEBHOOK_TOLERANCE_S: 10..3600")
    if settings.require_secrets:
        for name in ("stripe_secret_key", "stripe_webhook_secret"):
            if not getattr(settings, name):
                raise ConfigError(f"GATEWAY_{name.upper()}_FILE: required secret is missing"
                                  " (GATEWAY_REQUIRE_SECRETS is on)")
    if not key and settings.stripe_api_base:
        key = SANDBOX_SECRET_KEY
        log.warning("billing_sandbox_key", api_base=settings.stripe_api_base,
                    hint="set GATEWAY_STRIPE_SECRET_KEY_FILE for real Stripe")
    if not key:
        log.warning("billing_unconfigured",
                    hint="card purchases answer 503 until GATEWAY_STRIPE_SECRET_KEY_FILE is set")
    return StripeBilling(api_key=key, webhook_secret=settings.stripe_webhook_secret,
                         api_base=settings.stripe_api_base, max_network_retries=settings.stripe_max_network_retries,
                         timeout_s=settings.stripe_timeout_s, webhook_tolerance_s=settings.stripe_webhook_tolerance_s)


async def install(container: Container) -> None:
    settings = container.settings
    if container.find(Billing) is None:  # type: ignore[type-abstract]
        container.provide(Billing, stripe_billing(settings))  # type: ignore[type-abstract]
    billing: Billing = container.get(Billing)  # type: ignore[type-abstract]
    ledger: Ledger = container.get(Ledger)  # type: ignore[type-abstract]
    if container.find(PurchaseService) is None:
        limiter = RateLimiter(container.db, limit=settings.purchase_rate_per_minute, window_s=60)
        container.provide(PurchaseService, PurchaseService(db=container.db, billing=billing, ledger=ledger,
                                                           packs=settings.packs, base_url=settings.base_url,
                                                           limiter=limiter))
    if container.find(WebhookService) is None:
        container.provide(WebhookService, WebhookService(db=container.db, billing=billing, ledger=ledger,
                                                         purchases=container.get(PurchaseService)))

    async def billing_health() -> HealthResult:
        if not billing.configured:
            return HealthResult(True, "card payments not configured (no Stripe key)", degraded=True)
        return HealthResult(True, "configured")

    container.add_health_check("billing", billing_health)
    container.add_background_task("billing-webhook-event-prune", lambda: _prune_events(container))


async def _prune_events(container: Container) -> None:
    while True:
        pruned = await container.db.write(functools.partial(repo.prune_events,
                                                            older_than=time.time() - EVENT_RETENTION_S))
        if pruned:
            log.info("billing_webhook_events_pruned", rows=pruned)
        await asyncio.sleep(PRUNE_INTERVAL_S)


ROUTES = [SeedBillingController, BillingController, WebhookController]
