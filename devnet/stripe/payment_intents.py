"""PaymentIntents and their lifecycle: requires_payment_method -> (requires_action) -> succeeded, with
declines as 402 ``card_error`` that leave the intent in ``requires_payment_method``."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from devnet.stripe.cards import Card
from devnet.stripe.charges import build_charge
from devnet.stripe.disputes import open_dispute
from devnet.stripe.errors import StripeError, card_error, invalid_request
from devnet.stripe.forms import Params, check_known, read_bool, read_int, read_metadata, read_str, require_str
from devnet.stripe.ids import client_secret, new_id, now
from devnet.stripe.payment_methods import card_of, create_payment_method, resolve_payment_method
from devnet.stripe.sandbox import Context, Sandbox, paginate
from devnet.stripe.store import JsonObject

__all__ = [
    "authenticate",
    "cancel_payment_intent",
    "confirm_intent",
    "confirm_payment_intent",
    "create_payment_intent",
    "list_payment_intents",
    "new_payment_intent",
    "retrieve_payment_intent",
    "update_payment_intent",
]

_CONFIRM_PARAMS = ("payment_method", "payment_method_data", "return_url", "off_session", "error_on_requires_action",
                   "receipt_email", "setup_future_usage", "mandate_data", "use_stripe_sdk", "payment_method_options",
                   "payment_method_types", "client_secret", "capture_method", "shipping", "confirmation_token")
_CREATE_PARAMS = ("amount", "currency", "confirm", "metadata", "description", "automatic_payment_methods",
                  "statement_descriptor", "statement_descriptor_suffix", "confirmation_method", "customer",
                  "transfer_group", "on_behalf_of")
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
_REDIRECT_MESSAGE = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these "
    "payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't "
    "want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)
_AUTH_FAILED = ("The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new "
                "PaymentMethod to attempt to fulfill this PaymentIntent again.")


def _automatic_methods(params: Params) -> JsonObject | None:
    if params.get("payment_method_types"):
        return None
    raw = params.get("automatic_payment_methods")
    if isinstance(raw, dict):
        allow = raw.get("allow_redirects", "always")
        if allow not in ("always", "never"):
            raise invalid_request("Invalid automatic_payment_methods[allow_redirects]",
                                  param="automatic_payment_methods[allow_redirects]")
        return {"allow_redirects": allow, "enabled": raw.get("enabled", "true") == "true"}
    return {"allow_redirects": "always", "enabled": True}


def _confirmation_method(params: Params) -> str:
    method = read_str(params, "confirmation_method", "automatic") or "automatic"
    if method not in ("automatic", "manual"):
        raise invalid_request(f"Invalid confirmation_method: {method[:40]}", param="confirmation_method")
    return method


def _amount_and_currency(params: Params) -> tuple[int, str]:
    amount = read_int(params, "amount", required=True, minimum=1)
    currency = require_str(params, "currency").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_request(f"Invalid currency: {currency[:20]}.", param="currency")
    assert amount is not None
    if currency == "usd" and amount < 50:
        raise invalid_request("Amount must be at least $0.50 usd", param="amount", code="amount_too_small")
    return amount, currency


def new_payment_intent(sb: Sandbox, amount: int, currency: str, params: Params) -> JsonObject:
    """A PaymentIntent in ``requires_payment_method`` (the Checkout page builds one too)."""
    pi_id = new_id("pi")
    types = params.get("payment_method_types") or ["card"]
    if not isinstance(types, list) or types != ["card"]:
        raise invalid_request("The sandbox supports only payment_method_types=['card'].",
                              param="payment_method_types")
    pi: JsonObject = {
        "id": pi_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": _automatic_methods(params), "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic_async", "client_secret": client_secret(pi_id),
        "confirmation_method": _confirmation_method(params), "created": now(),
        "currency": currency, "customer": None, "customer_account": None,
        "description": read_str(params, "description"), "excluded_payment_method_types": None,
        "last_payment_error": None, "latest_charge": None, "livemode": False, "managed_payments": None,
        "metadata": read_metadata(params), "next_action": None, "on_behalf_of": None, "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": None, "receipt_email": read_str(params, "receipt_email"),
        "review": None, "setup_future_usage": read_str(params, "setup_future_usage"), "shipping": None,
        "source": None, "statement_descriptor": read_str(params, "statement_descriptor"),
        "statement_descriptor_suffix": read_str(params, "statement_descriptor_suffix"),
        "status": "requires_payment_method", "transfer_data": None,
        "transfer_group": read_str(params, "transfer_group"),
    }
    sb.store.put(pi, private={"return_url": None})
    return pi


def create_payment_intent(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
    check_known(params, _CREATE_PARAMS + _CONFIRM_PARAMS)
    if read_str(params, "customer"):
        raise invalid_request(f"No such customer: '{read_str(params, 'customer')}'", param="customer",
                              code="resource_missing")
    if read_str(params, "capture_method", "automatic") == "manual":
        raise invalid_request("The sandbox does not support capture_method=manual.", param="capture_method")
    amount, currency = _amount_and_currency(params)
    confirm = read_bool(params, "confirm")
    if not confirm:
        for name in ("return_url", "off_session", "error_on_requires_action", "payment_method_data"):
            if name in params:
                raise invalid_request(f"You can not pass `{name}` without `confirm=true`.", param=name)
    pm = _payment_method_param(sb, params) if params.get("payment_method") else None
    probe = _automatic_methods(params)
    if confirm and probe and probe["enabled"] and probe["allow_redirects"] != "never" and not params.get("return_url"):
        raise invalid_request(_REDIRECT_MESSAGE, param="return_url")
    pi = new_payment_intent(sb, amount, currency, params)
    if pm is not None:
        pi["payment_method"] = pm["id"]
    sb.emit("payment_intent.created", pi, ctx)
    if confirm:  # with the resolved id: a pm_card_* alias makes one PaymentMethod, not two
        return confirm_intent(sb, ctx, pi, {**params, "payment_method": pm["id"]} if pm else params)
    return pi


def _payment_method_param(sb: Sandbox, params: Params) -> JsonObject | None:
    raw = params.get("payment_method")
    if isinstance(raw, str) and raw:
        return resolve_payment_method(sb, raw)
    data = params.get("payment_method_data")
    if isinstance(data, dict):
        return create_payment_method(sb, Context(), data)
    return None


def retrieve_payment_intent(sb: Sandbox, ctx: Context, pi_id: str, params: Params) -> JsonObject:
    pi = sb.store.get("payment_intent", pi_id)
    if ctx.publishable:
        check_known(params, ("client_secret",))
        if read_str(params, "client_secret") != pi["client_secret"]:
            raise invalid_request("The client_secret provided does not match the client_secret associated with "
                                  "the PaymentIntent.", param="client_secret")
    else:
        check_known(params, ("client_secret",))
    return pi


def update_payment_intent(sb: Sandbox, ctx: Context, pi_id: str, params: Params) -> JsonObject:
    check_known(params, ("amount", "currency", "metadata", "description", "receipt_email", "payment_method",
                         "statement_descriptor", "statement_descriptor_suffix", "setup_future_usage"))
    pi = sb.store.get("payment_intent", pi_id)
    if pi["status"] in ("succeeded", "canceled", "processing") and set(params) - {"metadata", "description"}:
        raise invalid_request(f"You cannot update this PaymentIntent because it has a status of {pi['status']}.",
                              code="payment_intent_unexpected_state", executed=True)
    if "amount" in params:
        pi["amount"], _ = _amount_and_currency({"amount": params["amount"], "currency": pi["currency"]})
    for name in ("description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"):
        if name in params:
            pi[name] = read_str(params, name) or None
    if params.get("payment_method"):
        pm = _payment_method_param(sb, params)
        pi["payment_method"] = pm["id"] if pm else None
    pi["metadata"] = read_metadata(params, pi["metadata"])
    sb.store.dirty = True
    return pi


def confirm_payment_intent(sb: Sandbox, ctx: Context, pi_id: str, params: Params) -> JsonObject:
    check_known(params, _CONFIRM_PARAMS)
    pi = retrieve_payment_intent(sb, ctx, pi_id, {k: v for k, v in params.items() if k == "client_secret"})
    return confirm_intent(sb, ctx, pi, params)


def confirm_intent(sb: Sandbox, ctx: Context, pi: JsonObject, params: Params) -> JsonObject:
    status = pi["status"]
    if status == "succeeded":
        raise invalid_request("You cannot confirm this PaymentIntent because it has already succeeded after being "
                              "previously confirmed.", code="payment_intent_unexpected_state", executed=True)
    if status == "canceled":
        raise invalid_request("You cannot confirm this PaymentIntent because it has a status of canceled.",
                              code="payment_intent_unexpected_state", executed=True)
    pm = _payment_method_param(sb, params)
    if pm is None and pi["payment_method"]:
        pm = sb.store.get("payment_method", pi["payment_method"], "payment_method")
    if pm is None:
        raise invalid_request("You cannot confirm this PaymentIntent because it's missing a payment method. You can "
                              "either update the PaymentIntent with a payment method and then confirm it again, or "
                              "confirm it again directly with a payment method.",
                              code="payment_intent_unexpected_state", executed=True)
    apm = pi["automatic_payment_methods"]
    return_url = read_str(params, "return_url") or sb.store.private.get(pi["id"], {}).get("return_url")
    if apm and apm["enabled"] and apm["allow_redirects"] != "never" and not return_url and not ctx.publishable:
        raise invalid_request(_REDIRECT_MESSAGE, param="return_url")
    sb.store.private.setdefault(pi["id"], {})["return_url"] = return_url
    if "metadata" in params:
        pi["metadata"] = read_metadata(params, pi["metadata"])
    pi["payment_method"] = pm["id"]
    pi["last_payment_error"] = None
    card = card_of(sb, pm)
    private = sb.store.private.setdefault(pi["id"], {})
    if card.outcome == "authenticate" and private.pop("authenticated_pm", None) == pm["id"]:
        return _charge(sb, ctx, pi, pm, card, three_d_secure=True)  # manual confirmation after 3-D Secure
    if card.outcome == "authenticate":
        if read_bool(params, "off_session") or read_bool(params, "error_on_requires_action"):
            _fail(sb, ctx, pi, pm, card_error_body(pm, "authentication_required",
                                                   "Your card was declined. This transaction requires "
                                                   "authentication.", "authentication_required"))
        return _require_action(sb, ctx, pi, return_url)
    return _charge(sb, ctx, pi, pm, card, three_d_secure=False)


def card_error_body(pm: JsonObject, code: str, message: str, decline_code: str | None) -> JsonObject:
    return {"code": code, "decline_code": decline_code, "doc_url": f"https://stripe.com/docs/error-codes/{code}",
            "message": message, "payment_method": copy.deepcopy(pm), "type": "card_error"}


def _require_action(sb: Sandbox, ctx: Context, pi: JsonObject, return_url: str | None) -> JsonObject:
    page = f"{sb.public_url}/3ds/{pi['id']}?client_secret={pi['client_secret']}"
    if return_url:
        pi["next_action"] = {"type": "redirect_to_url",
                             "redirect_to_url": {"return_url": return_url, "url": page}}
    else:
        pi["next_action"] = {"type": "use_stripe_sdk",
                             "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": page,
                                                "source": new_id("src")}}
    pi["status"] = "requires_action"
    sb.store.dirty = True
    sb.emit("payment_intent.requires_action", pi, ctx)
    return pi


def _charge(sb: Sandbox, ctx: Context, pi: JsonObject, pm: JsonObject, card: Card,
            three_d_secure: bool) -> JsonObject:
    succeeded = card.outcome in ("succeed", "dispute", "authenticate")
    charge = build_charge(sb, pi, pm, card, succeeded=succeeded, three_d_secure=three_d_secure)
    pi["latest_charge"] = charge["id"]
    pi["next_action"] = None
    if not succeeded:
        body = card_error_body(pm, card.code or "card_declined", card.message or "Your card was declined.",
                               card.decline_code)
        body["charge"] = charge["id"]
        sb.emit("charge.failed", charge, ctx)
        _fail(sb, ctx, pi, pm, body)
    pi["status"] = "succeeded"
    pi["amount_received"] = pi["amount"]
    sb.store.dirty = True
    sb.emit("charge.succeeded", charge, ctx)
    sb.emit("payment_intent.succeeded", pi, ctx)
    if card.outcome == "dispute":
        open_dispute(sb, charge, card.dispute_reason)
    return pi


def _fail(sb: Sandbox, ctx: Context, pi: JsonObject, pm: JsonObject, error: JsonObject) -> None:
    """Record a failed attempt (intent back to requires_payment_method) and raise Stripe's 402."""
    pi["status"] = "requires_payment_method"
    pi["last_payment_error"] = error
    pi["payment_method"] = None
    pi["next_action"] = None
    sb.store.dirty = True
    sb.emit("payment_intent.payment_failed", pi, ctx)
    extra: dict[str, Any] = {"payment_intent": copy.deepcopy(pi), "payment_method": copy.deepcopy(pm)}
    if "charge" in error:
        extra["charge"] = error["charge"]
    raise card_error(error["message"], error["code"], decline_code=error.get("decline_code"), extra=extra)


def authenticate(sb: Sandbox, pi_id: str, succeed: bool) -> JsonObject:
    """What the 3-D Secure page does: complete (the payment goes on) or fail the challenge."""
    pi = sb.store.get("payment_intent", pi_id)
    if pi["status"] != "requires_action":
        raise invalid_request(f"PaymentIntent {pi_id} is {pi['status']}, not requires_action.",
                              code="payment_intent_unexpected_state", executed=True)
    pm = sb.store.get("payment_method", pi["payment_method"], "payment_method")
    ctx = Context.automatic()
    if succeed and pi["confirmation_method"] == "manual":
        # Stripe: a manually confirmed intent waits for the server's next confirm after authentication
        pi.update(status="requires_confirmation", next_action=None)
        sb.store.private.setdefault(pi_id, {})["authenticated_pm"] = pm["id"]
        sb.store.dirty = True
        return pi
    if succeed:
        return _charge(sb, ctx, pi, pm, card_of(sb, pm), three_d_secure=True)
    body = {"code": "payment_intent_authentication_failure",
            "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
            "message": _AUTH_FAILED, "payment_method": copy.deepcopy(pm), "type": "invalid_request_error"}
    with contextlib.suppress(StripeError):  # nobody awaits an API answer: the intent and its event are it
        _fail(sb, ctx, pi, pm, body)
    return pi


def cancel_payment_intent(sb: Sandbox, ctx: Context, pi_id: str, params: Params) -> JsonObject:
    check_known(params, ("cancellation_reason",))
    pi = sb.store.get("payment_intent", pi_id)
    if pi["status"] not in _CANCELABLE:
        raise invalid_request(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a PaymentIntent "
            f"with one of the following statuses may be canceled: {', '.join(_CANCELABLE)}.",
            code="payment_intent_unexpected_state", executed=True)
    reason = read_str(params, "cancellation_reason")
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
        raise invalid_request(f"Invalid cancellation_reason: {reason[:40]}", param="cancellation_reason")
    pi.update(status="canceled", canceled_at=now(), cancellation_reason=reason, next_action=None)
    sb.store.dirty = True
    sb.emit("payment_intent.canceled", pi, ctx)
    return pi


def list_payment_intents(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "customer", "created"))
    return paginate(sb.store.of_kind("payment_intent"), params, "/v1/payment_intents")
