"""Checkout Sessions (``mode=payment`` with ``price_data`` line items): the ``url`` is the sandbox's
hosted test-card page; paying it succeeds a PaymentIntent and completes the session."""

from __future__ import annotations

import secrets
import string
from typing import Any

from devnet.stripe.cards import PM_ALIASES
from devnet.stripe.errors import invalid_request
from devnet.stripe.forms import TIMESTAMP_MAX, Params, check_known, read_int, read_metadata, read_str, require_str
from devnet.stripe.ids import now
from devnet.stripe.payment_intents import authenticate, confirm_intent, new_payment_intent
from devnet.stripe.payment_methods import card_of, create_payment_method, resolve_payment_method
from devnet.stripe.sandbox import Context, Sandbox, list_object, paginate
from devnet.stripe.store import JsonObject

__all__ = ["create_session", "expire_overdue", "expire_session", "list_line_items", "list_sessions",
           "pay_session"]

_PARAMS = ("mode", "line_items", "success_url", "cancel_url", "client_reference_id", "metadata", "customer_email",
           "expires_at", "payment_method_types", "payment_intent_data", "currency", "locale", "submit_type",
           "ui_mode", "return_url", "billing_address_collection", "allow_promotion_codes")


def _session_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "cs_test_" + "".join(secrets.choice(alphabet) for _ in range(58))


def _line_items(raw: Any) -> list[JsonObject]:
    if not isinstance(raw, list) or not raw:
        raise invalid_request("Missing required param: line_items.", param="line_items")
    items = []
    for i, item in enumerate(raw[:100]):
        if not isinstance(item, dict):
            raise invalid_request(f"Invalid line_items[{i}]", param=f"line_items[{i}]")
        if "price" in item:
            raise invalid_request(f"No such price: '{str(item['price'])[:100]}'", param=f"line_items[{i}][price]",
                                  code="resource_missing")
        data = item.get("price_data")
        if not isinstance(data, dict):
            raise invalid_request(f"Missing required param: line_items[{i}][price_data].",
                                  param=f"line_items[{i}][price_data]")
        product = data.get("product_data")
        if not isinstance(product, dict) or not product.get("name"):
            raise invalid_request(f"Missing required param: line_items[{i}][price_data][product_data][name].",
                                  param=f"line_items[{i}][price_data][product_data][name]")
        unit = read_int(data, "unit_amount", required=True, minimum=0)
        quantity = read_int(item, "quantity", required=True, minimum=1, maximum=999_999)
        currency = require_str(data, "currency").lower()
        assert unit is not None and quantity is not None
        items.append({"id": f"li_{secrets.token_hex(12)}", "object": "item", "amount_discount": 0,
                      "amount_subtotal": unit * quantity, "amount_tax": 0, "amount_total": unit * quantity,
                      "currency": currency, "description": str(product["name"])[:250], "quantity": quantity,
                      "price": {"unit_amount": unit, "currency": currency, "product_name": product["name"]}})
    if len({item["currency"] for item in items}) > 1:
        raise invalid_request("All line items must share one currency.", param="line_items")
    return items


def create_session(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
    check_known(params, _PARAMS)
    if read_str(params, "mode") != "payment":
        raise invalid_request("The sandbox supports only mode=payment Checkout Sessions.", param="mode")
    items = _line_items(params.get("line_items"))
    success_url = require_str(params, "success_url")
    created = now()
    expires_at = read_int(params, "expires_at", maximum=TIMESTAMP_MAX) or created + sb.settings.checkout_ttl_s
    if not created + 1 <= expires_at <= created + 86_400 and "expires_at" in params:
        raise invalid_request("expires_at must be within the next 24 hours.", param="expires_at")
    total = sum(item["amount_total"] for item in items)
    session_id = _session_id()
    session: JsonObject = {
        "id": session_id, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
        "after_expiration": None, "allow_promotion_codes": None, "amount_subtotal": total, "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": read_str(params, "billing_address_collection"),
        "cancel_url": read_str(params, "cancel_url"), "client_reference_id": read_str(params, "client_reference_id"),
        "client_secret": None, "collected_information": None, "consent": None, "consent_collection": None,
        "created": created, "currency": items[0]["currency"], "currency_conversion": None, "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": None, "customer_account": None, "customer_creation": "if_required", "customer_details": None,
        "customer_email": read_str(params, "customer_email"), "discounts": [], "expires_at": expires_at,
        "integration_identifier": None, "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {
            "account_tax_ids": None, "custom_fields": None, "description": None, "footer": None, "issuer": None,
            "metadata": {}, "rendering_options": None}},
        "livemode": False, "locale": read_str(params, "locale"), "managed_payments": None,
        "metadata": read_metadata(params), "mode": "payment", "origin_context": None, "payment_intent": None,
        "payment_link": None, "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "payment_status": "unpaid", "permissions": None,
        "phone_number_collection": {"enabled": False}, "recovered_from": None, "saved_payment_method_options": None,
        "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None, "shipping_options": [],
        "status": "open", "submit_type": read_str(params, "submit_type"), "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": f"{sb.public_url}/checkout/{session_id}", "wallet_options": None,
    }
    pi_data = params.get("payment_intent_data")
    sb.store.put(session, private={"line_items": items,
                                   "pi_metadata": read_metadata(pi_data) if isinstance(pi_data, dict) else {}})
    return session


def expire_session(sb: Sandbox, ctx: Context, session_id: str) -> JsonObject:
    session = sb.store.get("checkout.session", session_id, "session")
    if session["status"] != "open":
        raise invalid_request(f"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout "
                              f"Session has a status of {session['status']}.", executed=True)
    session.update(status="expired", url=None)
    sb.store.dirty = True
    sb.emit("checkout.session.expired", session, ctx)
    return session


def expire_overdue(sb: Sandbox) -> int:
    """Expire open sessions past ``expires_at`` (the server sweeps every second)."""
    current = now()
    overdue = [s for s in sb.store.of_kind("checkout.session") if s["status"] == "open" and s["expires_at"] <= current]
    for session in overdue:
        expire_session(sb, Context.automatic(), session["id"])
    return len(overdue)


def pay_session(sb: Sandbox, session_id: str, card: JsonObject, email: str | None) -> JsonObject:
    """What the hosted page does when the customer submits a card: a PaymentIntent for the total,
    confirmed with that card (3-D Secure is passed, as a customer would). Declines raise the 402."""
    session = sb.store.get("checkout.session", session_id, "session")
    if session["status"] != "open":
        raise invalid_request(f"This Checkout Session is {session['status']}.", executed=True)
    pm_alias = card.get("payment_method")
    if isinstance(pm_alias, str) and pm_alias:
        if pm_alias not in PM_ALIASES and not sb.store.find(pm_alias):
            raise invalid_request(f"No such PaymentMethod: '{pm_alias[:100]}'", param="payment_method")
        pm = resolve_payment_method(sb, pm_alias)
    else:
        pm = create_payment_method(sb, Context(), {"type": "card", "card": card,
                                                   "billing_details": {"email": email}})
    private = sb.store.private.get(session_id, {})
    pi = sb.store.find(session["payment_intent"]) if session["payment_intent"] else None
    ctx = Context.automatic()
    if pi is None:
        pi = new_payment_intent(sb, int(session["amount_total"]), str(session["currency"]),
                                {"payment_method_types": ["card"]})
        pi["metadata"] = dict(private.get("pi_metadata", {}))
        session["payment_intent"] = pi["id"]
        sb.emit("payment_intent.created", pi, ctx)
    # the page confirms the way Stripe.js would; a decline raises its 402 with the session still open
    confirm_intent(sb, Context(publishable=True), pi, {"payment_method": pm["id"]})
    if pi["status"] == "requires_action" and card_of(sb, pm).outcome == "authenticate":
        authenticate(sb, pi["id"], succeed=True)
    if pi["status"] == "succeeded":
        _complete(sb, session, pm, email)
    return session


def _complete(sb: Sandbox, session: JsonObject, pm: JsonObject, email: str | None) -> None:
    address = pm["billing_details"]["address"]
    session.update(status="complete", payment_status="paid", url=None, customer_details={
        "address": address, "business_name": None, "email": email or session["customer_email"],
        "individual_name": None, "name": pm["billing_details"]["name"], "phone": None, "tax_exempt": "none",
        "tax_ids": []})
    sb.store.dirty = True
    sb.emit("checkout.session.completed", session, Context.automatic())


def list_line_items(sb: Sandbox, session_id: str, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before"))
    sb.store.get("checkout.session", session_id, "session")
    items = sb.store.private.get(session_id, {}).get("line_items", [])
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return paginate(items, params, url) if items else list_object(url, [])


def list_sessions(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "payment_intent", "status",
                         "client_reference_id", "created"))
    sessions = sb.store.of_kind("checkout.session")
    for name in ("payment_intent", "status", "client_reference_id"):
        value = read_str(params, name)
        if value is not None:
            sessions = [s for s in sessions if s[name] == value]
    return paginate(sessions, params, "/v1/checkout/sessions")
