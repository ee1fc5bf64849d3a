"""HTTP surface of billing: packs, the seed's purchase call, Elements, Checkout, purchases, the webhook.

Thin by design: parse, call the service, return a schema. Errors are raised by the services.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter

from gateway.accounts.principal import Principal
from gateway.billing.deps import provide_purchase_service, provide_webhook_service
from gateway.billing.repository import Purchase
from gateway.billing.schemas import (
    CheckoutOut,
    PackIn,
    PackOut,
    PaymentIntentOut,
    PurchaseCreditsIn,
    PurchaseOut,
    PurchaseStatusOut,
    WebhookOut,
)
from gateway.billing.services import PurchaseService
from gateway.billing.webhooks import WebhookService

__all__ = ["BillingController", "SeedBillingController", "WebhookController"]

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
IdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", required=False, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Optional: the same key names the same purchase, so a retry never charges twice")]
PURCHASE_DEPENDENCIES = {"purchases": Provide(provide_purchase_service)}


def _status_view(purchase: Purchase) -> PurchaseStatusOut:
    return PurchaseStatusOut(
        purchase_id=purchase.id, status=purchase.status, flow=purchase.flow, pack=purchase.pack_id,
        credits=purchase.credits, amount=purchase.amount, currency=purchase.currency, credited=purchase.credited,
        decline_code=purchase.decline_code, created_at=purchase.created_at)


class SeedBillingController(Controller):
    """The seed frontend's call, unchanged: ``POST /api/billing/purchase-credits {paymentMethodId, pack}``."""

    path = "/api/billing"
    tags = ["billing"]
    dependencies = PURCHASE_DEPENDENCIES

    @post("/purchase-credits", status_code=200, security=BEARER,
          summary="Buy a credit pack with a card PaymentMethod: 200 succeeded (credited), 200 requires_action "
                  "(finish 3-D Secure with client_secret), 402 declined (decline_code)")
    async def purchase_credits(self, data: JSONBody[PurchaseCreditsIn], principal: NamedDependency[Principal],
                               purchases: NamedDependency[PurchaseService],
                               idempotency_key: IdempotencyKey = None) -> PurchaseOut:
        result = await purchases.buy_with_card(user_id=principal.user_id, pack_id=data.pack,
                                               payment_method_id=data.payment_method_id, request_key=idempotency_key)
        p, intent = result.purchase, result.intent
        action = intent.status == "requires_action"
        message = (f"{p.credits} credits added" if intent.status == "succeeded"
                   else "Confirm the payment with your bank" if action else "The payment is processing")
        return PurchaseOut(
            purchase_id=p.id, status=intent.status, pack=p.pack_id, credits=p.credits, amount=p.amount,
            currency=p.currency, payment_intent_id=intent.id, requires_action=action,
            client_secret=intent.client_secret if action else None,
            credits_available=result.credits_available, message=message)


class BillingController(Controller):
    path = "/v1/billing"
    tags = ["billing"]
    dependencies = PURCHASE_DEPENDENCIES

    @get("/packs", summary="The credit packs on sale (public)")
    async def packs(self, purchases: NamedDependency[PurchaseService]) -> list[PackOut]:
        return [PackOut(id=p.id, credits=p.credits, amount=p.amount, currency=p.currency, label=p.label)
                for p in purchases.packs()]

    @post("/payment-intents", status_code=201, security=BEARER,
          summary="A PaymentIntent for a pack; Stripe Elements confirms it with client_secret, the webhook credits")
    async def payment_intent(self, data: JSONBody[PackIn], principal: NamedDependency[Principal],
                             purchases: NamedDependency[PurchaseService], request: Request[Any, Any, Any],
                             idempotency_key: IdempotencyKey = None) -> PaymentIntentOut:
        started = await purchases.start_elements(user_id=principal.user_id, pack_id=data.pack,
                                                 request_key=idempotency_key)
        p, intent = started.purchase, started.intent
        return PaymentIntentOut(
            purchase_id=p.id, payment_intent_id=intent.id, client_secret=intent.client_secret,
            publishable_key=request.app.state.settings.stripe_publishable_key, pack=p.pack_id, credits=p.credits,
            amount=p.amount, currency=p.currency)

    @post("/checkout", status_code=201, security=BEARER,
          summary="A Stripe Checkout Session for a pack: send the browser to url; the webhook credits")
    async def checkout(self, data: JSONBody[PackIn], principal: NamedDependency[Principal],
                       purchases: NamedDependency[PurchaseService],
                       idempotency_key: IdempotencyKey = None) -> CheckoutOut:
        started = await purchases.start_checkout(user_id=principal.user_id, pack_id=data.pack,
                                                 request_key=idempotency_key)
        return CheckoutOut(purchase_id=started.purchase.id, checkout_session_id=started.session_id, url=started.url)

    @get("/purchases/{purchase_id:str}", security=BEARER, summary="One of the artist's purchases (404 for others)")
    async def purchase(self, purchase_id: Annotated[str, PathParameter(max_length=64)],
                       principal: NamedDependency[Principal],
                       purchases: NamedDependency[PurchaseService]) -> PurchaseStatusOut:
        return _status_view(await purchases.get(user_id=principal.user_id, purchase_id=purchase_id))


class WebhookController(Controller):
    path = "/v1/billing"
    tags = ["billing"]
    dependencies = {"webhooks": Provide(provide_webhook_service)}

    @post("/webhook", status_code=200,
          summary="Stripe webhook: signature verified on the raw body (400 otherwise); replays are no-ops")
    async def webhook(self, request: Request[Any, Any, Any], webhooks: NamedDependency[WebhookService]) -> WebhookOut:
        payload = await request.body()
        outcome = await webhooks.receive(payload, request.headers.get("stripe-signature"))
        return WebhookOut(received=True, event_id=outcome.event_id, type=outcome.type, result=outcome.result,
                          duplicate=outcome.duplicate)
