"""Charges (one per payment attempt) and the balance transactions behind them."""

from __future__ import annotations

from devnet.stripe.cards import Card
from devnet.stripe.forms import Params, check_known, read_str
from devnet.stripe.ids import new_id, now
from devnet.stripe.sandbox import Sandbox, list_object, paginate
from devnet.stripe.store import JsonObject

__all__ = ["balance_transaction", "build_charge", "list_charges", "stripe_fee"]

_SELLER_MESSAGES = {
    "generic_decline": "The bank did not return any further details with this decline.",
    "insufficient_funds": "The bank returned the decline code `insufficient_funds`.",
}


def stripe_fee(amount: int) -> int:
    """2.9 % + 30 cents, Stripe's US card price."""
    return round(amount * 0.029) + 30


def balance_transaction(sb: Sandbox, source: str, amount: int, currency: str, kind: str,
                        description: str | None = None) -> str:
    fee = stripe_fee(amount) if kind == "charge" else (1500 if kind == "adjustment" else 0)
    created = now()
    txn: JsonObject = {
        "id": new_id("txn"), "object": "balance_transaction", "amount": amount,
        "available_on": created + 2 * 86_400, "balance_type": "payments", "created": created,
        "currency": currency, "description": description, "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency,
                         "description": "Stripe processing fees", "type": "stripe_fee"}] if fee else [],
        "net": amount - fee, "reporting_category": kind, "source": source, "status": "pending", "type": kind,
    }
    sb.store.put(txn)
    return str(txn["id"])


def _outcome(card: Card, succeeded: bool) -> JsonObject:
    if succeeded:
        return {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                "network_status": "approved_by_network", "reason": None,
                "seller_message": "Payment complete.", "type": "authorized"}
    decline = card.decline_code or "generic_decline"
    return {"advice_code": "try_again_later" if decline == "processing_error" else "do_not_try_again",
            "network_advice_code": None, "network_decline_code": None,
            "network_status": "declined_by_network", "reason": decline,
            "seller_message": _SELLER_MESSAGES.get(decline, f"The bank returned the decline code `{decline}`."),
            "type": "issuer_declined"}


def _card_details(pm: JsonObject, amount: int, three_d_secure: bool) -> JsonObject:
    card = pm["card"]
    return {
        "card": {
            "amount_authorized": amount, "authorization_code": None, "brand": card["brand"],
            "checks": dict(card["checks"]), "country": card["country"], "exp_month": card["exp_month"],
            "exp_year": card["exp_year"], "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"], "funding": card["funding"],
            "incremental_authorization": {"status": "unavailable"}, "installments": None,
            "last4": card["last4"], "mandate": None, "multicapture": {"status": "unavailable"},
            "network": card["brand"], "network_token": {"used": False}, "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": {
                "authentication_flow": "challenge", "electronic_commerce_indicator": "05",
                "exemption_indicator": None, "result": "authenticated", "result_reason": None,
                "transaction_id": new_id("3ds"), "version": "2.2.0",
            } if three_d_secure else None,
            "transaction_link_id": None, "wallet": None,
        },
        "type": "card",
    }


def build_charge(sb: Sandbox, pi: JsonObject, pm: JsonObject, card: Card, *, succeeded: bool,
                 three_d_secure: bool = False) -> JsonObject:
    """A charge for one attempt of ``pi`` with ``pm``: succeeded (captured) or failed (declined)."""
    charge_id = new_id("ch")
    amount = int(pi["amount"])
    charge: JsonObject = {
        "id": charge_id, "object": "charge", "amount": amount,
        "amount_captured": amount if succeeded else 0, "amount_refunded": 0, "application": None,
        "application_fee": None, "application_fee_amount": None,
        "balance_transaction": balance_transaction(sb, charge_id, amount, pi["currency"], "charge",
                                                   pi.get("description")) if succeeded else None,
        "billing_details": dict(pm["billing_details"]), "calculated_statement_descriptor": "CREATORPASS",
        "captured": succeeded, "created": now(), "currency": pi["currency"], "customer": pi.get("customer"),
        "description": pi.get("description"), "disputed": False, "failure_balance_transaction": None,
        "failure_code": None if succeeded else card.code, "failure_message": None if succeeded else card.message,
        "fraud_details": {}, "livemode": False, "metadata": dict(pi.get("metadata") or {}),
        "on_behalf_of": None, "outcome": _outcome(card, succeeded), "paid": succeeded,
        "payment_intent": pi["id"], "payment_method": pm["id"],
        "payment_method_details": _card_details(pm, amount, three_d_secure),
        "receipt_email": pi.get("receipt_email"), "receipt_number": None,
        "receipt_url": f"{sb.public_url}/receipts/{charge_id}", "refunded": False,
        "refunds": list_object(f"/v1/charges/{charge_id}/refunds", []), "review": None, "shipping": None,
        "source": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": pi.get("statement_descriptor_suffix"),
        "status": "succeeded" if succeeded else "failed", "transfer_data": None, "transfer_group": None,
    }
    return sb.store.put(charge)


def list_charges(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "payment_intent", "customer", "created"))
    charges = sb.store.of_kind("charge")
    payment_intent = read_str(params, "payment_intent")
    if payment_intent is not None:
        charges = [c for c in charges if c["payment_intent"] == payment_intent]
    return paginate(charges, params, "/v1/charges")

