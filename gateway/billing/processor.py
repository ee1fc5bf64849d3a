"""The card processor behind billing: the narrow ``Billing`` protocol and its Stripe implementation.

``StripeBilling`` talks to Stripe (or the offline sandbox in ``devnet/stripe/``, which the library
cannot tell apart) through the real ``stripe`` library's ``StripeClient``, asynchronously over httpx.
Every call that creates something carries an idempotency key derived from our own purchase id, so
the library's own network retries (``max_network_retries``) and our retries after a crash replay the
first answer instead of charging twice. Stripe's errors become the gateway's error tree here, once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import stripe

from common.logging import get_logger
from gateway.lib.errors import BadGateway, ClientError, Conflict, PaymentRequired, ServiceUnavailable

__all__ = [
    "UNCONFIGURED_MESSAGE",
    "Billing",
    "BillingUnavailable",
    "CardDeclined",
    "CheckoutSessionView",
    "InvalidPaymentMethod",
    "InvalidWebhook",
    "PaymentIntentView",
    "StripeBilling",
    "StripeUpstreamError",
]

log = get_logger("gateway.billing.stripe")

UNCONFIGURED_MESSAGE = ("Card payments are not configured on this gateway (the operator sets "
                        "GATEWAY_STRIPE_SECRET_KEY_FILE, or GATEWAY_STRIPE_API_BASE for the Stripe sandbox)")


class CardDeclined(PaymentRequired):
    """The card was declined: 402 with Stripe's ``decline_code`` (``generic_decline``, ``insufficient_funds``…)."""

    code = "card_declined"


class InvalidPaymentMethod(ClientError):
    code = "invalid_payment_method"


class InvalidWebhook(ClientError):
    """A webhook whose signature, timestamp or body does not verify: 400, nothing processed."""

    code = "invalid_webhook"


class BillingUnavailable(ServiceUnavailable):
    """Card payments are not configured here, or Stripe cannot be reached right now."""

    code = "billing_unavailable"


class StripeUpstreamError(BadGateway):
    code = "stripe_error"


@dataclass(frozen=True)
class PaymentIntentView:
    id: str
    status: str  # requires_payment_method | requires_confirmation | requires_action | processing | succeeded | canceled
    amount: int
    currency: str
    client_secret: str
    latest_charge: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutSessionView:
    id: str
    url: str
    payment_intent: str = ""


class Billing(Protocol):
    """What billing asks of the card processor. Errors are the gateway's (CardDeclined, …)."""

    @property
    def configured(self) -> bool:
        """False when no API key is known: every call raises BillingUnavailable (503)."""
        ...

    async def create_payment_intent(self, *, amount: int, currency: str, metadata: dict[str, str],
                                    idempotency_key: str, description: str,
                                    payment_method: str | None = None) -> PaymentIntentView:
        """Create a card PaymentIntent; with ``payment_method`` it is confirmed at once (3-D Secure
        then answers ``requires_action``; a decline raises CardDeclined)."""
        ...

    async def create_checkout_session(self, *, amount: int, currency: str, label: str,
                                      metadata: dict[str, str], client_reference_id: str,
                                      success_url: str, cancel_url: str,
                                      idempotency_key: str) -> CheckoutSessionView: ...

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event (a JSON object) when ``Stripe-Signature`` verifies over the raw ``payload`` and its
        timestamp is within the tolerance both ways; InvalidWebhook otherwise."""
        ...


def _signed_timestamp(header: str) -> int:
    """The one ``t=`` of a ``Stripe-Signature`` header (the library's parser takes the first silently)."""
    stamps = [part.split("=", 1)[1] for part in header.split(",") if part.strip().startswith("t=")]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        raise InvalidWebhook("Stripe-Signature must carry exactly one numeric t= timestamp")
    return int(stamps[0])


def parse_event(payload: bytes) -> dict[str, Any]:
    """A verified payload as an event object with the fields every handler relies on."""
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidWebhook("The webhook body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidWebhook("The webhook body is not a Stripe event")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise InvalidWebhook("The event has no id or type")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidWebhook("The event has no data.object")
    return event


def _map_error(exc: stripe.StripeError, *, what: str) -> Exception:
    """Stripe's exception → the gateway's error (the message is Stripe's, safe to show)."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or exc.user_message or "The card processor refused the request"
    if isinstance(exc, stripe.CardError):
        pi = getattr(error, "payment_intent", None)
        extra = {
            "decline_code": getattr(error, "decline_code", None) or exc.code or "card_declined",
            "stripe_code": exc.code or "",
            "payment_intent_id": str(getattr(pi, "id", "") or ""),
        }
        return CardDeclined(message, extra=extra)
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict(f"Stripe refused a reused idempotency key for {what}: {message}", code="idempotency_conflict")
    if isinstance(exc, stripe.InvalidRequestError):
        if (exc.param or "").startswith("payment_method") or exc.code in ("resource_missing",):
            return InvalidPaymentMethod(message, extra={"stripe_code": exc.code or ""})
        log.error("stripe_invalid_request", what=what, stripe_code=exc.code, param=exc.param, detail=message[:300])
        return StripeUpstreamError(f"Stripe refused {what}: {message}")
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        log.error("stripe_key_refused", what=what, status=exc.http_status)
        return BillingUnavailable("Card payments are misconfigured here (Stripe refused the API key)")
    if isinstance(exc, stripe.RateLimitError):
        return BillingUnavailable("Stripe is rate limiting; try again shortly", retry_after_s=2)
    if isinstance(exc, stripe.APIConnectionError):
        log.warning("stripe_unreachable", what=what)
        return BillingUnavailable("Stripe cannot be reached right now; try again shortly", retry_after_s=5)
    log.error("stripe_api_error", what=what, status=exc.http_status, detail=message[:300])
    return StripeUpstreamError(f"Stripe failed {what}; try again shortly")


def _view_intent(obj: Any) -> PaymentIntentView:
    pi: dict[str, Any] = obj.to_dict()
    charge = pi.get("latest_charge") or ""
    return PaymentIntentView(
        id=str(pi["id"]), status=str(pi["status"]), amount=int(pi["amount"]), currency=str(pi["currency"]),
        client_secret=str(pi.get("client_secret") or ""),
        latest_charge=str(charge if isinstance(charge, str) else charge.get("id", "")),
        metadata={str(k): str(v) for k, v in (pi.get("metadata") or {}).items()},
    )


class StripeBilling:
    """``Billing`` over the real ``stripe`` library. ``api_key`` '' → every call is a 503 problem."""

    def __init__(self, *, api_key: str, webhook_secret: str, api_base: str = "", max_network_retries: int = 2,
                 timeout_s: float = 20.0, webhook_tolerance_s: int = 300) -> None:
        self._webhook_secret = webhook_secret
        self._tolerance_s = webhook_tolerance_s
        self._client: stripe.StripeClient | None = None
        if api_key:
            base: Any = {"api": api_base.rstrip("/")} if api_base else None
            self._client = stripe.StripeClient(
                api_key, base_addresses=base, max_network_retries=max_network_retries,
                http_client=stripe.HTTPXClient(timeout=timeout_s),
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _require(self) -> stripe.StripeClient:
        if self._client is None:
            raise BillingUnavailable(UNCONFIGURED_MESSAGE)
        return self._client

    async def create_payment_intent(self, *, amount: int, currency: str, metadata: dict[str, str],
                                    idempotency_key: str, description: str,
                                    payment_method: str | None = None) -> PaymentIntentView:
        client = self._require()
        params: dict[str, Any] = {
            "amount": amount, "currency": currency, "metadata": metadata, "description": description,
            # cards only: a server-side confirm then needs no return_url for redirect-based methods
            "payment_method_types": ["card"],
        }
        if payment_method is not None:
            params.update(payment_method=payment_method, confirm=True)
        try:
            pi = await client.v1.payment_intents.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _map_error(exc, what="the payment") from None
        return _view_intent(pi)

    async def create_checkout_session(self, *, amount: int, currency: str, label: str,
                                      metadata: dict[str, str], client_reference_id: str,
                                      success_url: str, cancel_url: str,
                                      idempotency_key: str) -> CheckoutSessionView:
        client = self._require()
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency, "unit_amount": amount, "product_data": {"name": label}}}],
            "success_url": success_url, "cancel_url": cancel_url,
            "client_reference_id": client_reference_id, "metadata": metadata,
            # the PaymentIntent behind the session carries the same metadata, so its own
            # payment_intent.succeeded credits the same purchase under the same per-PI key
            "payment_intent_data": {"metadata": metadata},
        }
        try:
            session = await client.v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _map_error(exc, what="the checkout session") from None
        data: dict[str, Any] = session.to_dict()
        pi: Any = data.get("payment_intent") or ""
        return CheckoutSessionView(id=str(data["id"]), url=str(data.get("url") or ""),
                                   payment_intent=str(pi if isinstance(pi, str) else pi.get("id", "")))

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        if not self._webhook_secret:
            raise BillingUnavailable("Webhooks are not configured on this gateway (GATEWAY_STRIPE_WEBHOOK_SECRET_FILE)")
        if not signature_header:
            raise InvalidWebhook("The Stripe-Signature header is missing")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature_header, self._webhook_secret,
                                                  tolerance=self._tolerance_s)
        except UnicodeDecodeError:
            raise InvalidWebhook("The webhook body is not UTF-8") from None
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(f"The webhook signature does not verify: {exc.user_message or exc}") from None
        # construct_event refuses stale timestamps only; a far-future one would stay replayable
        # for as long as it is ahead of the clock, so it is refused the same way.
        if _signed_timestamp(signature_header) > time.time() + self._tolerance_s:
            raise InvalidWebhook(f"The webhook timestamp is more than {self._tolerance_s} s in the future")
        return parse_event(payload)
