"""Refunds, full or partial: ``amount_refunded`` adds up on the charge, ``refunded`` only when whole."""

from __future__ import annotations

from devnet.stripe.charges import balance_transaction
from devnet.stripe.errors import invalid_request
from devnet.stripe.forms import Params, check_known, read_int, read_metadata, read_str
from devnet.stripe.ids import new_id, now
from devnet.stripe.sandbox import Context, Sandbox, paginate
from devnet.stripe.store import JsonObject

__all__ = ["create_refund", "list_refunds", "update_refund"]

_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _dollars(amount: int) -> str:
    return f"${amount / 100:,.2f}"


def _target_charge(sb: Sandbox, params: Params) -> JsonObject:
    charge_id = read_str(params, "charge")
    pi_id = read_str(params, "payment_intent")
    if charge_id and pi_id:
        raise invalid_request("You can only pass one of charge or payment_intent.", param="payment_intent")
    if charge_id:
        return sb.store.get("charge", charge_id, "charge")
    if pi_id:
        pi = sb.store.get("payment_intent", pi_id, "payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid_request(f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                                  param="payment_intent", code="charge_not_refundable", executed=True)
        return sb.store.get("charge", pi["latest_charge"], "payment_intent")
    raise invalid_request("One of the following params should be provided for this request: payment_intent or "
                          "charge.", code="parameter_missing")


def create_refund(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
    check_known(params, ("charge", "payment_intent", "amount", "reason", "metadata", "instructions_email",
                         "refund_application_fee", "reverse_transfer", "origin"))
    charge = _target_charge(sb, params)
    amount = read_int(params, "amount", minimum=1)
    reason = read_str(params, "reason")
    if reason is not None and reason not in _REASONS:
        raise invalid_request(f"Invalid reason: must be one of {', '.join(_REASONS)}", param="reason")
    metadata = read_metadata(params)
    if charge["status"] != "succeeded":
        raise invalid_request(f"Charge {charge['id']} has not succeeded; it cannot be refunded.",
                              code="charge_not_refundable", executed=True)
    if charge["disputed"]:
        raise invalid_request(f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                              code="charge_disputed", executed=True)
    remaining = int(charge["amount"]) - int(charge["amount_refunded"])
    if remaining <= 0:
        raise invalid_request(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded",
                              executed=True)
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise invalid_request(f"Refund amount ({_dollars(amount)}) is greater than unrefunded amount on charge "
                              f"({_dollars(remaining)})", param="amount", code="amount_too_large", executed=True)
    refund_id = new_id("re")
    refund: JsonObject = {
        "id": refund_id, "object": "refund", "amount": amount,
        "balance_transaction": balance_transaction(sb, refund_id, -amount, charge["currency"], "refund",
                                                   "REFUND FOR CHARGE"),
        "charge": charge["id"], "created": now(), "currency": charge["currency"], "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {"card": {"reference": None, "reference_status": "pending",
                                         "reference_type": "acquirer_reference_number", "type": "refund"},
                                "type": "card"},
        "metadata": metadata, "payment_intent": charge["payment_intent"], "payment_method": charge["payment_method"],
        "reason": reason, "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
        "transfer_reversal": None,
    }
    sb.store.put(refund)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    charge["refunds"]["data"].insert(0, refund)
    del charge["refunds"]["data"][10:]  # Stripe embeds the newest ten
    charge["refunds"]["has_more"] = len(_refunds_of(sb, charge["id"])) > 10
    sb.store.dirty = True
    sb.emit("refund.created", refund, ctx)
    sb.emit("charge.refunded", charge, ctx, previous=previous)
    return refund


def _refunds_of(sb: Sandbox, charge_id: str) -> list[JsonObject]:
    return [r for r in sb.store.of_kind("refund") if r["charge"] == charge_id]


def update_refund(sb: Sandbox, refund_id: str, params: Params) -> JsonObject:
    check_known(params, ("metadata",))
    refund = sb.store.get("refund", refund_id)
    refund["metadata"] = read_metadata(params, refund["metadata"])
    sb.store.dirty = True
    return refund


def list_refunds(sb: Sandbox, params: Params, charge_id: str | None = None) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "charge", "payment_intent", "created"))
    refunds = sb.store.of_kind("refund")
    charge_id = charge_id or read_str(params, "charge")
    if charge_id:
        refunds = [r for r in refunds if r["charge"] == charge_id]
    pi_id = read_str(params, "payment_intent")
    if pi_id:
        refunds = [r for r in refunds if r["payment_intent"] == pi_id]
    url = f"/v1/charges/{charge_id}/refunds" if charge_id else "/v1/refunds"
    return paginate(refunds, params, url)
