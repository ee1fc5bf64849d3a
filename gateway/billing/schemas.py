"""Billing's request and response bodies (msgspec Structs).

Requests refuse unknown fields: a client that sends ``amount`` (or ``price``, ``credits``) is told at
once that packs set the price, instead of silently paying something other than it asked for.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "CheckoutOut",
    "PackIn",
    "PackOut",
    "PaymentIntentOut",
    "PurchaseCreditsIn",
    "PurchaseOut",
    "PurchaseStatusOut",
    "WebhookOut",
]

PackId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="A pack id from GET /v1/billing/packs")]
PaymentMethodId = Annotated[str, msgspec.Meta(min_length=4, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$",
                                              description="A Stripe PaymentMethod id (pm_…) from Stripe.js")]


class PackOut(msgspec.Struct):
    id: str
    credits: int
    amount: int  # smallest currency unit (cents)
    currency: str
    label: str


class PurchaseCreditsIn(msgspec.Struct, forbid_unknown_fields=True):
    """The seed's ``{paymentMethodId, pack}``; the price comes from the pack, never from the client."""

    payment_method_id: PaymentMethodId = msgspec.field(name="paymentMethodId")
    pack: PackId


class PackIn(msgspec.Struct, forbid_unknown_fields=True):
    pack: PackId


class PurchaseOut(msgspec.Struct):
    purchase_id: str
    status: str  # succeeded | requires_action | processing
    pack: str
    credits: int
    amount: int
    currency: str
    payment_intent_id: str
    requires_action: bool
    client_secret: str | None = None  # only when the browser must finish 3-D Secure
    credits_available: int | None = None  # the balance after crediting (succeeded only)
    message: str = ""


class PaymentIntentOut(msgspec.Struct):
    purchase_id: str
    payment_intent_id: str
    client_secret: str
    publishable_key: str
    pack: str
    credits: int
    amount: int
    currency: str


class CheckoutOut(msgspec.Struct):
    purchase_id: str
    checkout_session_id: str
    url: str


class PurchaseStatusOut(msgspec.Struct):
    purchase_id: str
    status: str
    flow: str
    pack: str
    credits: int
    amount: int
    currency: str
    credited: bool
    decline_code: str
    created_at: float


class WebhookOut(msgspec.Struct):
    received: bool
    event_id: str
    type: str
    result: str
    duplicate: bool
