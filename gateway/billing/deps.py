"""Litestar dependencies of the billing domain (services looked up in the container)."""

from __future__ import annotations

from litestar.datastructures import State

from gateway.billing.services import PurchaseService
from gateway.billing.webhooks import WebhookService

__all__ = ["provide_purchase_service", "provide_webhook_service"]


async def provide_purchase_service(state: State) -> PurchaseService:
    service: PurchaseService = state.container.get(PurchaseService)
    return service


async def provide_webhook_service(state: State) -> WebhookService:
    service: WebhookService = state.container.get(WebhookService)
    return service
