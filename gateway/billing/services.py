"""Buying credit packs: the card (seed) flow, Stripe Elements and Checkout, and crediting once.

A purchase row is written before Stripe is called; its id is in the PaymentIntent's metadata and is
the root of the Stripe idempotency key. Credits land through the ledger under ``stripe:pi:{id}``, one
key per PaymentIntent, so the synchronous confirm, ``payment_intent.succeeded`` and
``checkout.session.completed`` (in any order, any number of times) credit exactly once.

A caller may send ``Idempotency-Key``: the same key (per artist) names the same purchase, so a retry
after a timeout or a crash replays Stripe's first answer instead of charging the card again. Without
one, every call is a new purchase (the seed's page sends none).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from common.logging import get_logger
from gateway.accounts.ratelimit import RateLimiter
from gateway.billing import repository as repo
from gateway.billing.metrics import PURCHASES
from gateway.billing.processor import (
    UNCONFIGURED_MESSAGE,
    Billing,
    BillingUnavailable,
    CardDeclined,
    InvalidPaymentMethod,
    PaymentIntentView,
)
from gateway.billing.repository import Purchase
from gateway.credits.ledger import AccountFrozen, Ledger
from gateway.lib.db import Database
from gateway.lib.errors import ClientError, Conflict, Forbidden, NotFound
from gateway.settings import CreditPack

__all__ = ["CardPurchase", "CheckoutStart", "ElementsStart", "PurchaseService", "UnknownPack", "credit_key"]

log = get_logger("gateway.billing")


class UnknownPack(ClientError):
    code = "unknown_pack"


def credit_key(payment_intent_id: str) -> str:
    """The ledger key of a PaymentIntent's credit: one per PI, whoever reports it first."""
    return f"stripe:pi:{payment_intent_id}"


@dataclass(frozen=True)
class CardPurchase:
    purchase: Purchase
    intent: PaymentIntentView
    credits_available: int | None


@dataclass(frozen=True)
class ElementsStart:
    purchase: Purchase
    intent: PaymentIntentView


@dataclass(frozen=True)
class CheckoutStart:
    purchase: Purchase
    session_id: str
    url: str


class PurchaseService:
    def __init__(self, *, db: Database, billing: Billing, ledger: Ledger, packs: tuple[CreditPack, ...],
                 base_url: str, limiter: RateLimiter | None = None) -> None:
        self._db = db
        self._limiter = limiter
        self._billing = billing
        self._ledger = ledger
        self._packs = {p.id: p for p in packs}
        self._base_url = base_url.rstrip("/")

    @property
    def billing(self) -> Billing:
        return self._billing

    def packs(self) -> list[CreditPack]:
        return list(self._packs.values())

    def pack(self, pack_id: str) -> CreditPack:
        pack = self._packs.get(pack_id)
        if pack is None:
            raise UnknownPack(f"Unknown pack {pack_id!r}; choose one of: {', '.join(self._packs) or '(none)'}",
                              extra={"packs": list(self._packs)})
        return pack

    # -- the three ways to pay ------------------------------------------------------------------

    async def buy_with_card(self, *, user_id: str, pack_id: str, payment_method_id: str,
                            request_key: str | None) -> CardPurchase:
        """Create and confirm a PaymentIntent; credit at once when it succeeds."""
        pack = self.pack(pack_id)
        purchase = await self._open(user_id, pack, "card", request_key, f"card|{pack.id}|{payment_method_id}")
        try:
            intent = await self._billing.create_payment_intent(
                amount=pack.amount, currency=pack.currency, metadata=self._metadata(purchase),
                idempotency_key=f"creatorpass-purchase-{purchase.id}", description=pack.label,
                payment_method=payment_method_id)
        except CardDeclined as exc:
            PURCHASES.labels("card", "declined").inc()
            await self._record_failure(purchase, str(exc.extra.get("payment_intent_id") or ""),
                                       str(exc.extra.get("decline_code") or ""))
            exc.extra["purchase_id"] = purchase.id
            raise
        except InvalidPaymentMethod:
            PURCHASES.labels("card", "invalid_payment_method").inc()
            await self._db.write(lambda c: repo.set_status(c, purchase.id, "failed"))
            raise
        await self._attach(purchase, intent)
        if intent.status == "succeeded":
            await self.credit(purchase, intent.id, intent.latest_charge, source="confirm")
            balance = await self._ledger.balance(user_id)
            PURCHASES.labels("card", "succeeded").inc()
            return CardPurchase(await self._reload(purchase), intent, balance.available)
        if intent.status in ("requires_action", "processing"):
            PURCHASES.labels("card", intent.status).inc()
            await self._db.write(lambda c: repo.set_status(c, purchase.id, intent.status))
            return CardPurchase(await self._reload(purchase), intent, None)
        # a confirm that neither succeeded nor raised: Stripe left the card unusable for this payment
        PURCHASES.labels("card", "declined").inc()
        await self._record_failure(purchase, intent.id, "")
        raise CardDeclined("The card could not be charged; try another card",
                           extra={"decline_code": intent.status, "purchase_id": purchase.id,
                                  "payment_intent_id": intent.id})

    async def start_elements(self, *, user_id: str, pack_id: str, request_key: str | None) -> ElementsStart:
        """An unconfirmed PaymentIntent whose client secret Stripe Elements confirms in the browser."""
        pack = self.pack(pack_id)
        purchase = await self._open(user_id, pack, "elements", request_key, f"elements|{pack.id}")
        intent = await self._billing.create_payment_intent(
            amount=pack.amount, currency=pack.currency, metadata=self._metadata(purchase),
            idempotency_key=f"creatorpass-purchase-{purchase.id}", description=pack.label)
        await self._attach(purchase, intent)
        await self._db.write(lambda c: repo.set_status(c, purchase.id, intent.status))
        PURCHASES.labels("elements", "started").inc()
        return ElementsStart(await self._reload(purchase), intent)

    async def start_checkout(self, *, user_id: str, pack_id: str, request_key: str | None) -> CheckoutStart:
        """A hosted Checkout Session; ``checkout.session.completed`` credits it."""
        pack = self.pack(pack_id)
        purchase = await self._open(user_id, pack, "checkout", request_key, f"checkout|{pack.id}")
        back = f"{self._base_url}/?purchase={purchase.id}"
        session = await self._billing.create_checkout_session(
            amount=pack.amount, currency=pack.currency, label=pack.label, metadata=self._metadata(purchase),
            client_reference_id=purchase.id, success_url=f"{back}&checkout=success",
            cancel_url=f"{back}&checkout=cancel", idempotency_key=f"creatorpass-checkout-{purchase.id}")
        attached = await self._db.write(lambda c: repo.attach_checkout_session(c, purchase.id, session.id))
        if not attached:
            raise Conflict("This purchase already has another checkout session", code="purchase_conflict")
        await self._db.write(lambda c: repo.set_status(c, purchase.id, "open"))
        PURCHASES.labels("checkout", "started").inc()
        return CheckoutStart(await self._reload(purchase), session.id, session.url)

    async def get(self, *, user_id: str, purchase_id: str) -> Purchase:
        purchase = await self._db.read(lambda c: repo.get_purchase(c, purchase_id))
        if purchase is None or purchase.user_id != user_id:
            raise NotFound("No such purchase", code="purchase_not_found")
        return purchase

    # -- crediting (shared with the webhook) ---------------------------------------------------

    async def credit(self, purchase: Purchase, payment_intent_id: str, charge_id: str = "", *,
                     source: str) -> bool:
        """Credit the purchase for its PaymentIntent; True when this call was the one that credited."""
        was_credited = purchase.credited
        entry = await self._ledger.credit_purchase(
            user_id=purchase.user_id, credits=purchase.credits, key=credit_key(payment_intent_id),
            reference={"purchase_id": purchase.id, "pack_id": purchase.pack_id,
                       "payment_intent_id": payment_intent_id, "source": source})
        await self._db.write(lambda c: repo.mark_credited(c, purchase.id))
        if charge_id:
            await self._db.write(lambda c: repo.attach_payment_intent(c, purchase.id, payment_intent_id, charge_id))
        if not was_credited:
            log.info("billing_purchase_credited", purchase_id=purchase.id, user_id=purchase.user_id,
                     credits=purchase.credits, payment_intent_id=payment_intent_id, source=source, entry_id=entry.id)
        return not was_credited

    # -- internals ---------------------------------------------------------------------------

    def _metadata(self, purchase: Purchase) -> dict[str, str]:
        return {"purchase_id": purchase.id, "user_id": purchase.user_id, "pack_id": purchase.pack_id,
                "credits": str(purchase.credits)}

    async def _open(self, user_id: str, pack: CreditPack, flow: str, request_key: str | None,
                    request: str) -> Purchase:
        """Persist the purchase (or find the one this request key already names) before Stripe is called."""
        if not user_id:
            raise Forbidden("Buying credits needs an email account: sign up, or link this wallet to one",
                            code="card_account_required")
        if not self._billing.configured:
            raise BillingUnavailable(UNCONFIGURED_MESSAGE)
        if self._limiter is not None:  # each attempt may reach Stripe: a bound against card testing
            await self._limiter.hit([f"billing:purchase:user:{user_id}"], what="purchase")
        balance = await self._ledger.balance(user_id)
        if balance.frozen:
            raise AccountFrozen(
                f"This account is frozen ({balance.frozen_reason or 'a card payment is disputed'}); "
                "purchases and generations are paused until it is resolved")
        now = time.time()
        request_hash = hashlib.sha256(request.encode()).hexdigest()
        candidate = Purchase(
            id=f"pur_{secrets.token_hex(12)}", user_id=user_id, pack_id=pack.id, credits=pack.credits,
            amount=pack.amount, currency=pack.currency, flow=flow, status="pending", request_key=request_key,
            request_hash=request_hash, payment_intent_id=None, checkout_session_id=None, charge_id=None,
            decline_code="", credited=False, created_at=now, updated_at=now)
        purchase = await self._db.write(lambda c: repo.insert_purchase(c, candidate))
        if purchase.request_hash != request_hash:
            raise Conflict("This Idempotency-Key was used for a different purchase; use a new key",
                           code="idempotency_key_reused")
        return purchase

    async def _attach(self, purchase: Purchase, intent: PaymentIntentView) -> None:
        attached = await self._db.write(
            lambda c: repo.attach_payment_intent(c, purchase.id, intent.id, intent.latest_charge))
        if not attached:
            log.error("billing_purchase_intent_mismatch", purchase_id=purchase.id, payment_intent_id=intent.id)
            raise Conflict("This purchase is bound to another payment", code="purchase_conflict")

    async def _record_failure(self, purchase: Purchase, payment_intent_id: str, decline_code: str) -> None:
        def write(c: sqlite3.Connection) -> None:
            if payment_intent_id:
                repo.attach_payment_intent(c, purchase.id, payment_intent_id)
            repo.set_status(c, purchase.id, "failed", decline_code=decline_code)

        await self._db.write(write)

    async def _reload(self, purchase: Purchase) -> Purchase:
        fresh = await self._db.read(lambda c: repo.get_purchase(c, purchase.id))
        return fresh or purchase
