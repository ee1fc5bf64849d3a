"""Disputes: opened by the ``createDispute`` test cards once their payment succeeds, closed won or
lost by the sandbox control (or lost when the merchant calls ``POST /v1/disputes/{id}/close``)."""

from __future__ import annotations

from devnet.stripe.errors import invalid_request
from devnet.stripe.forms import Params, check_known, read_metadata, read_str
from devnet.stripe.ids import new_id, now
from devnet.stripe.sandbox import Context, Sandbox, paginate
from devnet.stripe.store import JsonObject

__all__ = ["close_dispute", "list_disputes", "open_dispute", "update_dispute"]

DISPUTE_FEE = 1500
_EVIDENCE_FIELDS = (
    "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
    "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
    "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
    "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt", "refund_policy",
    "refund_policy_disclosure", "refund_refusal_explanation", "service_date", "service_documentation",
    "shipping_address", "shipping_carrier", "shipping_date", "shipping_documentation", "shipping_tracking_number",
    "uncategorized_file", "uncategorized_text",
)
_OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


def _dispute_txn(sb: Sandbox, dispute_id: str, amount: int, currency: str, description: str) -> JsonObject:
    created = now()
    fee = DISPUTE_FEE if amount < 0 else -DISPUTE_FEE
    txn: JsonObject = {
        "id": new_id("txn"), "object": "balance_transaction", "amount": amount,
        "available_on": created, "balance_type": "payments", "created": created, "currency": currency,
        "description": description, "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": currency, "description": "Dispute fee",
                         "type": "stripe_fee"}],
        "net": amount - fee, "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
        "source": dispute_id, "status": "available", "type": "adjustment",
    }
    sb.store.put(txn)
    return txn


def open_dispute(sb: Sandbox, charge: JsonObject, reason: str) -> JsonObject:
    dispute_id = new_id("dp")
    created = now()
    amount, currency = int(charge["amount"]), str(charge["currency"])
    card = charge["payment_method_details"]["card"]
    dispute: JsonObject = {
        "id": dispute_id, "object": "dispute", "amount": amount,
        "balance_transactions": [_dispute_txn(sb, dispute_id, -amount, currency,
                                              f"Chargeback withdrawal for {charge['id']}")],
        "charge": charge["id"], "created": created, "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": {**{name: None for name in _EVIDENCE_FIELDS}, "enhanced_evidence": {}},
        "evidence_details": {"due_by": created + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": False,
                             "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": False, "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {"card": {"brand": card["brand"], "case_type": "chargeback",
                                            "network": card["network"],
                                            "network_reason_code": "10.4" if reason == "fraudulent" else "13.1"},
                                   "type": "card"},
        "reason": reason, "status": "needs_response",
    }
    sb.store.put(dispute)
    charge["disputed"] = True
    ctx = Context.automatic()
    sb.emit("charge.dispute.created", dispute, ctx)
    sb.emit("charge.dispute.funds_withdrawn", dispute, ctx)
    return dispute


def close_dispute(sb: Sandbox, dispute_id: str, outcome: str, ctx: Context | None = None) -> JsonObject:
    """Close an open dispute ``won`` (funds reinstated) or ``lost``."""
    if outcome not in ("won", "lost"):
        raise invalid_request("outcome must be 'won' or 'lost'", param="outcome")
    dispute = sb.store.get("dispute", dispute_id)
    if dispute["status"] not in _OPEN:
        raise invalid_request(f"This dispute is already closed ({dispute['status']}).", code="dispute_already_closed",
                              executed=True)
    ctx = ctx or Context.automatic()
    dispute["status"] = outcome
    if outcome == "won":
        dispute["balance_transactions"].append(
            _dispute_txn(sb, dispute_id, int(dispute["amount"]), dispute["currency"],
                         f"Chargeback reversal for {dispute['charge']}"))
    sb.store.dirty = True
    sb.emit("charge.dispute.closed", dispute, ctx)
    if outcome == "won":
        sb.emit("charge.dispute.funds_reinstated", dispute, ctx)
    return dispute


def update_dispute(sb: Sandbox, dispute_id: str, params: Params) -> JsonObject:
    check_known(params, ("metadata", "evidence", "submit"))
    dispute = sb.store.get("dispute", dispute_id)
    evidence = params.get("evidence")
    if isinstance(evidence, dict):
        for key, value in evidence.items():
            if key in _EVIDENCE_FIELDS:
                dispute["evidence"][key] = read_str(evidence, key) or None if isinstance(value, str) else None
        dispute["evidence_details"]["has_evidence"] = True
    dispute["metadata"] = read_metadata(params, dispute["metadata"])
    sb.store.dirty = True
    return dispute


def list_disputes(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "charge", "payment_intent", "created"))
    disputes = sb.store.of_kind("dispute")
    for name in ("charge", "payment_intent"):
        value = read_str(params, name)
        if value is not None:
            disputes = [d for d in disputes if d[name] == value]
    return paginate(disputes, params, "/v1/disputes")
