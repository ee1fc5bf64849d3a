"""Stripe webhooks: verified on the raw body, deduplicated by event id, every handler idempotent.

Deliveries are at least once and unordered, so no handler assumes an earlier event arrived:

- ``payment_intent.succeeded`` / ``checkout.session.completed`` credit the purchase under its
  PaymentIntent's ledger key (``stripe:pi:{id}``), shared with the synchronous confirm.
- ``charge.refunded`` first makes sure the purchase is credited (a refunded charge was paid), then
  reverses floor(credits × amount_refunded / amount) less what that charge already reversed; the
  cumulative ``amount_refunded`` only grows, so a late partial-refund event after the full one is a no-op.
- ``charge.dispute.created`` freezes the account; ``charge.dispute.closed`` unfreezes it when won and
  no other dispute is open; a lost dispute reverses the disputed share of the credits and the account
  stays frozen (the operator decides). A ``created`` arriving after its ``closed`` changes nothing.
- anything else is answered 200 and ignored.

Processing is serialised by one lock (webhook traffic is light), so the freeze decisions of two
events for the same account cannot cross: ``db.lock``, an advisory lock on PostgreSQL, so it holds
across replicas (an event and its duplicate delivered to two replicas are processed one after the other).
An event whose handler failed is not marked processed:
the error answer makes Stripe deliver it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.logging import get_logger
from gateway.billing import repository as repo
from gateway.billing.metrics import WEBHOOK_EVENTS
from gateway.billing.processor import Billing, InvalidWebhook
from gateway.billing.repository import Dispute, Purchase
from gateway.billing.services import PurchaseService
from gateway.credits.ledger import Ledger
from gateway.lib.db import Database

__all__ = ["HANDLED_EVENTS", "WebhookOutcome", "WebhookService"]

log = get_logger("gateway.billing.webhook")

Handler = Callable[[dict[str, Any]], Awaitable[str]]
DISPUTE_CLOSED_STATUSES = ("won", "lost", "warning_closed", "prevented")


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    type: str
    result: str
    duplicate: bool


def _id_of(value: Any) -> str:
    """An id field that may come expanded (an object) or as a plain id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _mark_applied(step: repo.ReversalStep) -> Callable[[sqlite3.Connection], None]:
    return lambda c: repo.mark_step_applied(c, step)


def _amount(obj: dict[str, Any], name: str) -> int:
    """A Stripe amount field (a non-negative integer); a signed event with anything else is refused."""
    value = obj.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidWebhook(f"The event's {name} is not a non-negative integer")
    return value


class WebhookService:
    def __init__(self, *, db: Database, billing: Billing, ledger: Ledger, purchases: PurchaseService) -> None:
        self._db = db
        self._billing = billing
        self._ledger = ledger
        self._purchases = purchases
        self._handlers: dict[str, Handler] = {
            "payment_intent.succeeded": self._intent_succeeded,
            "payment_intent.payment_failed": self._intent_failed,
            "payment_intent.canceled": self._intent_canceled,
            "checkout.session.completed": self._checkout_completed,
            "checkout.session.expired": self._checkout_expired,
            "charge.refunded": self._charge_refunded,
            "charge.dispute.created": self._dispute_news,
            "charge.dispute.updated": self._dispute_news,
            "charge.dispute.closed": self._dispute_news,
        }

    async def receive(self, payload: bytes, signature_header: str | None) -> WebhookOutcome:
        try:
            event = self._billing.verify_webhook(payload, signature_header)
        except InvalidWebhook as exc:
            WEBHOOK_EVENTS.labels("unverified", "rejected").inc()
            log.warning("billing_webhook_rejected", reason=exc.detail)
            raise
        event_id, event_type = str(event["id"]), str(event["type"])
        label = event_type if event_type in self._handlers else "other"
        async with self._db.lock("billing:webhooks"):
            first = await self._db.write(lambda c: repo.start_event(c, event_id, event_type))
            if first is not None:
                WEBHOOK_EVENTS.labels(label, "duplicate").inc()
                return WebhookOutcome(event_id, event_type, first, True)
            handler = self._handlers.get(event_type)
            try:
                result = "ignored" if handler is None else await handler(event["data"]["object"])
            except InvalidWebhook as exc:  # signed, yet not what Stripe sends: retrying cannot help
                log.error("billing_webhook_malformed", event_id=event_id, type=event_type, reason=exc.detail)
                result = "malformed"
            except Exception:
                WEBHOOK_EVENTS.labels(label, "error").inc()
                log.exception("billing_webhook_failed", event_id=event_id, type=event_type)
                raise
            await self._db.write(lambda c: repo.finish_event(c, event_id, result))
        WEBHOOK_EVENTS.labels(label, result).inc()
        log.info("billing_webhook_processed", event_id=event_id, type=event_type, result=result)
        return WebhookOutcome(event_id, event_type, result, False)

    # -- finding our purchase ---------------------------------------------------------------------

    async def _purchase(self, *, purchase_id: str = "", payment_intent_id: str = "",
                        charge_id: str = "") -> Purchase | None:
        def find(c: sqlite3.Connection) -> Purchase | None:
            found = repo.get_purchase(c, purchase_id) if purchase_id else None
            if found is None and payment_intent_id:
                found = repo.find_purchase_by_payment_intent(c, payment_intent_id)
            if found is None and charge_id:
                row = c.execute("SELECT id FROM billing_purchases WHERE charge_id = ?", (charge_id,)).fetchone()
                found = repo.get_purchase(c, row["id"]) if row else None
            return found

        return await self._db.read(find)

    def _matches(self, purchase: Purchase, amount: Any, currency: Any) -> bool:
        if amount != purchase.amount or str(currency).lower() != purchase.currency:
            log.error("billing_webhook_amount_mismatch", purchase_id=purchase.id, amount=amount,
                      currency=currency, expected=purchase.amount)
            return False
        return True

    async def _credit(self, purchase: Purchase, payment_intent_id: str, charge_id: str, source: str) -> str:
        bound = await self._db.write(
            lambda c: repo.attach_payment_intent(c, purchase.id, payment_intent_id, charge_id))
        if not bound:
            log.error("billing_webhook_intent_mismatch", purchase_id=purchase.id, payment_intent_id=payment_intent_id)
            return "mismatch"
        first = await self._purchases.credit(purchase, payment_intent_id, charge_id, source=source)
        return "credited" if first else "already_credited"

    # -- payments ------------------------------------------------------------------------------------

    async def _intent_succeeded(self, pi: dict[str, Any]) -> str:
        purchase = await self._purchase(purchase_id=str((pi.get("metadata") or {}).get("purchase_id") or ""),
                                        payment_intent_id=str(pi.get("id") or ""))
        if purchase is None:
            return "unknown_purchase"
        if pi.get("status") != "succeeded" or not self._matches(purchase, pi.get("amount"), pi.get("currency")):
            return "mismatch"
        return await self._credit(purchase, str(pi["id"]), _id_of(pi.get("latest_charge")), "payment_intent.succeeded")

    async def _intent_failed(self, pi: dict[str, Any]) -> str:
        purchase = await self._purchase(purchase_id=str((pi.get("metadata") or {}).get("purchase_id") or ""),
                                        payment_intent_id=str(pi.get("id") or ""))
        if purchase is None:
            return "unknown_purchase"
        error = pi.get("last_payment_error") or {}
        decline = str(error.get("decline_code") or error.get("code") or "") if isinstance(error, dict) else ""
        await self._db.write(lambda c: repo.set_status(c, purchase.id, "failed", decline_code=decline))
        return "recorded"

    async def _intent_canceled(self, pi: dict[str, Any]) -> str:
        purchase = await self._purchase(payment_intent_id=str(pi.get("id") or ""))
        if purchase is None:
            return "unknown_purchase"
        await self._db.write(lambda c: repo.set_status(c, purchase.id, "canceled"))
        return "recorded"

    async def _checkout_completed(self, session: dict[str, Any]) -> str:
        metadata = session.get("metadata") or {}
        purchase_id = str(session.get("client_reference_id") or metadata.get("purchase_id") or "")
        purchase = await self._purchase(purchase_id=purchase_id)
        if purchase is None:
            return "unknown_purchase"
        session_id = str(session.get("id") or "")
        if not await self._db.write(lambda c: repo.attach_checkout_session(c, purchase.id, session_id)):
            log.error("billing_webhook_session_mismatch", purchase_id=purchase.id, session_id=session_id)
            return "mismatch"
        if session.get("payment_status") != "paid":
            return "recorded"  # an asynchronous method still settling: its payment_intent.succeeded credits it
        if not self._matches(purchase, session.get("amount_total"), session.get("currency")):
            return "mismatch"
        payment_intent_id = _id_of(session.get("payment_intent"))
        if not payment_intent_id:
            return "mismatch"
        return await self._credit(purchase, payment_intent_id, "", "checkout.session.completed")

    async def _checkout_expired(self, session: dict[str, Any]) -> str:
        purchase = await self._purchase(purchase_id=str(session.get("client_reference_id") or ""))
        if purchase is None:
            return "unknown_purchase"
        await self._db.write(lambda c: repo.set_status(c, purchase.id, "expired"))
        return "recorded"

    # -- refunds and disputes ------------------------------------------------------------------------

    async def _ensure_paid_credited(self, purchase: Purchase, payment_intent_id: str, charge_id: str) -> None:
        """A refunded or disputed charge was paid: credit it first (idempotent) so the order of events
        never matters and a reversal never lands on credits that were never given."""
        if payment_intent_id and not purchase.credited:
            await self._credit(purchase, payment_intent_id, charge_id, "charge")

    async def _apply_loss(self, purchase: Purchase, charge_id: str, charge_amount: int, *,
                          refunded: int | None = None, dispute_lost: int | None = None) -> int:
        def record(c: sqlite3.Connection) -> list[repo.ReversalStep]:
            repo.record_charge_loss(c, charge_id=charge_id, purchase=purchase, charge_amount=charge_amount,
                                    amount_refunded=refunded, dispute_lost_amount=dispute_lost)
            return repo.unapplied_steps(c, charge_id)

        reversed_credits = 0
        for step in await self._db.write(record):
            await self._ledger.reverse_purchase(
                user_id=purchase.user_id, credits=step.credits,
                key=f"stripe:ch:{charge_id}:reverse:{step.from_credits}-{step.to_credits}",
                reference={"purchase_id": purchase.id, "charge_id": charge_id,
                           "reversed_to": step.to_credits, "of_credits": purchase.credits})
            await self._db.write(_mark_applied(step))
            reversed_credits += step.credits
        if reversed_credits:
            log.info("billing_credits_reversed", purchase_id=purchase.id, charge_id=charge_id,
                     credits=reversed_credits)
        return reversed_credits

    async def _charge_refunded(self, charge: dict[str, Any]) -> str:
        charge_id, payment_intent_id = str(charge.get("id") or ""), _id_of(charge.get("payment_intent"))
        purchase = await self._purchase(payment_intent_id=payment_intent_id, charge_id=charge_id)
        if purchase is None or not charge_id:
            return "unknown_purchase"
        if str(charge.get("currency", "")).lower() != purchase.currency:
            return "mismatch"
        await self._ensure_paid_credited(purchase, payment_intent_id or purchase.payment_intent_id or "", charge_id)
        reversed_credits = await self._apply_loss(purchase, charge_id, _amount(charge, "amount"),
                                                  refunded=_amount(charge, "amount_refunded"))
        return "reversed" if reversed_credits else "recorded"

    async def _dispute_news(self, dispute: dict[str, Any]) -> str:
        charge_id, payment_intent_id = _id_of(dispute.get("charge")), _id_of(dispute.get("payment_intent"))
        purchase = await self._purchase(payment_intent_id=payment_intent_id, charge_id=charge_id)
        if purchase is None:
            return "unknown_purchase"
        status = str(dispute.get("status") or "")
        news = Dispute(id=str(dispute.get("id") or ""), charge_id=charge_id or purchase.charge_id or "",
                       purchase_id=purchase.id, user_id=purchase.user_id, amount=_amount(dispute, "amount"),
                       status=status, closed=status in DISPUTE_CLOSED_STATUSES)
        await self._ensure_paid_credited(purchase, payment_intent_id or purchase.payment_intent_id or "",
                                         charge_id)
        recorded = await self._db.write(lambda c: repo.record_dispute(c, news))
        reversed_credits = 0
        if recorded.closed and recorded.status == "lost" and recorded.charge_id:
            reversed_credits = await self._apply_loss(purchase, recorded.charge_id, purchase.amount,
                                                      dispute_lost=recorded.amount)
        change = await self._settle_freeze(purchase.user_id, recorded)
        return change or ("reversed" if reversed_credits else "recorded")

    async def _settle_freeze(self, user_id: str, dispute: Dispute) -> str:
        """Frozen while a dispute is open or one was lost; '' when nothing changed."""
        open_count, lost_count = await self._db.read(lambda c: repo.user_dispute_state(c, user_id))
        frozen = (await self._ledger.balance(user_id)).frozen
        if open_count or lost_count:
            if frozen:
                return ""
            reason = (f"a card payment is under dispute, {dispute.id}" if open_count
                      else f"a card payment was lost in dispute, {dispute.id}")
            await self._ledger.set_frozen(user_id, True, reason=reason, key=f"stripe:dispute:{dispute.id}:freeze")
            log.info("billing_account_frozen", user_id=user_id, dispute_id=dispute.id, status=dispute.status)
            return "frozen"
        if not frozen:
            return ""
        await self._ledger.set_frozen(user_id, False, reason=f"dispute {dispute.id} closed as {dispute.status}",
                                      key=f"stripe:dispute:{dispute.id}:unfreeze")
        log.info("billing_account_unfrozen", user_id=user_id, dispute_id=dispute.id, status=dispute.status)
        return "unfrozen"


HANDLED_EVENTS = (
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "checkout.session.completed", "checkout.session.expired", "charge.refunded",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
)
