"""PaymentMethods: from card fields (what Stripe.js sends with a ``pk_test_`` key), from ``tok_*``
tokens, and from the ``pm_card_*`` test ids (each use makes a fresh PaymentMethod, as Stripe does)."""

from __future__ import annotations

import datetime
from typing import Any

from devnet.stripe.cards import PM_ALIASES, Card, card_for_number, luhn_ok
from devnet.stripe.errors import card_error, invalid_request
from devnet.stripe.forms import Params, check_known, read_metadata, read_str
from devnet.stripe.ids import new_id, now
from devnet.stripe.sandbox import Context, Sandbox
from devnet.stripe.store import JsonObject

__all__ = ["card_of", "create_payment_method", "resolve_payment_method", "retrieve_payment_method"]

_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def _billing_details(raw: Any) -> JsonObject:
    raw = raw if isinstance(raw, dict) else {}
    address = raw.get("address") if isinstance(raw.get("address"), dict) else {}
    return {
        "address": {f: (address.get(f) or None) for f in _ADDRESS_FIELDS},
        "email": raw.get("email") or None,
        "name": raw.get("name") or None,
        "phone": raw.get("phone") or None,
        "tax_id": None,
    }


def _build(card: Card, exp_month: int, exp_year: int, billing: Any, metadata: dict[str, str],
           cvc_given: bool) -> JsonObject:
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(billing),
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None,
                       "cvc_check": "unchecked" if cvc_given else None},
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": card.fingerprint,
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
            "regulated_status": "unregulated",
        },
        "created": now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata,
        "type": "card",
    }


def _store_card(sb: Sandbox, card: Card, exp_month: int, exp_year: int, billing: Any,
                metadata: dict[str, str], cvc_given: bool = False) -> JsonObject:
    obj = _build(card, exp_month, exp_year, billing, metadata, cvc_given)
    return sb.store.put(obj, private={"card_number": card.number})


def _card_fields(raw: Any) -> tuple[Card, int, int, bool]:
    if not isinstance(raw, dict):
        raise invalid_request("Missing required param: card.", param="card")
    token = raw.get("token")
    if isinstance(token, str) and token:
        if token not in PM_ALIASES:
            raise invalid_request(f"No such token: '{token[:100]}'", param="card[token]", code="resource_missing")
        return card_for_number(PM_ALIASES[token]), 12, datetime.date.today().year + 3, False
    number = str(raw.get("number", "")).replace(" ", "")
    if not number:
        raise invalid_request("Missing required param: card[number].", param="card[number]")
    if not luhn_ok(number):
        raise card_error("Your card number is incorrect.", "incorrect_number", param="number")
    try:
        exp_month = int(str(raw.get("exp_month", "")))
        exp_year = int(str(raw.get("exp_year", "")))
    except ValueError:
        raise card_error("Your card's expiration month is invalid.", "invalid_expiry_month",
                         param="exp_month") from None
    if exp_year < 100:
        exp_year += 2000
    today = datetime.date.today()
    if not 1 <= exp_month <= 12:
        raise card_error("Your card's expiration month is invalid.", "invalid_expiry_month", param="exp_month")
    if (exp_year, exp_month) < (today.year, today.month) or exp_year > today.year + 50:
        raise card_error("Your card's expiration year is invalid.", "invalid_expiry_year", param="exp_year")
    cvc = raw.get("cvc")
    if cvc is not None and not (isinstance(cvc, str) and cvc.isdigit() and 3 <= len(cvc) <= 4):
        raise card_error("Your card's security code is invalid.", "invalid_cvc", param="cvc")
    return card_for_number(number), exp_month, exp_year, cvc is not None


def create_payment_method(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
    check_known(params, ("type", "card", "billing_details", "metadata", "allow_redisplay", "payment_user_agent",
                         "time_on_page", "guid", "muid", "sid", "key", "pasted_fields", "referrer"))
    kind = read_str(params, "type")
    if kind != "card":
        raise invalid_request("The sandbox supports only type=card PaymentMethods.", param="type")
    card, exp_month, exp_year, cvc_given = _card_fields(params.get("card"))
    return _store_card(sb, card, exp_month, exp_year, params.get("billing_details"), read_metadata(params),
                       cvc_given)


def resolve_payment_method(sb: Sandbox, pm_id: str, param: str = "payment_method") -> JsonObject:
    """A stored PaymentMethod, or a fresh one for a ``pm_card_*`` / ``tok_*`` test id."""
    if pm_id in PM_ALIASES:
        return _store_card(sb, card_for_number(PM_ALIASES[pm_id]), 12, datetime.date.today().year + 3, None, {})
    return sb.store.get("payment_method", pm_id, param)


def retrieve_payment_method(sb: Sandbox, pm_id: str) -> JsonObject:
    return resolve_payment_method(sb, pm_id, "payment_method")


def card_of(sb: Sandbox, pm: JsonObject) -> Card:
    number = sb.store.private.get(pm["id"], {}).get("card_number", "4242424242424242")
    return card_for_number(str(number))
