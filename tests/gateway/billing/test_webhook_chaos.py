"""Webhooks as Stripe really delivers them: duplicated, reordered, forged, stale — credited exactly once."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.gateway.billing.conftest import BillingStack, wait_until


def _elements_purchase(stack: BillingStack, headers: dict[str, str], card: str = "pm_card_visa") -> str:
    """A PaymentIntent paid in the 'browser' (no synchronous credit): only webhooks can credit it."""
    response = stack.http.post("/v1/billing/payment-intents", json={"pack": "pack10"}, headers=headers)
    assert response.status_code == 201, response.text
    pi_id: str = response.json()["payment_intent_id"]
    stack.stripe.v1.payment_intents.confirm(pi_id, params={"payment_method": card})
    return pi_id


def _event(stack: BillingStack, pi_id: str, event_type: str, index: int = 0) -> dict[str, Any]:
    return [e for e in stack.events_of(pi_id) if e["type"] == event_type][index]


def test_chaotic_deliveries_and_the_synchronous_confirm_credit_exactly_once(chaos_stack: BillingStack) -> None:
    stack = chaos_stack
    card_buyer, elements_buyer, refunded_buyer = stack.signup(), stack.signup(), stack.signup()
    confirmed = stack.buy(card_buyer)  # synchronous credit, then its webhooks (maybe twice, maybe late)
    assert confirmed.status_code == 200 and confirmed.json()["credits_available"] == 10
    elements_pi = _elements_purchase(stack, elements_buyer)
    refunded = stack.buy(refunded_buyer).json()
    stack.stripe.v1.refunds.create(params={"payment_intent": refunded["payment_intent_id"], "amount": 250})
    stack.stripe.v1.refunds.create(params={"payment_intent": refunded["payment_intent_id"], "amount": 100})
    pis = [confirmed.json()["payment_intent_id"], elements_pi, refunded["payment_intent_id"]]
    events = [e["id"] for pi in pis for e in stack.events_of(pi)]
    attempts = stack.wait_delivered(events)

    def pending() -> bool:
        return not stack.sandbox.deliveries()["pending"]

    wait_until(pending, "every chaotic delivery (duplicates too) to finish")
    attempts = stack.sandbox.deliveries()["attempts"]
    mine = [a for a in attempts if a["event"] in events]
    assert any(a["duplicate"] for a in mine), "chaos sent no duplicate: the test would prove nothing"
    assert any('"duplicate":true' in (a["response_body"] or "") for a in mine)
    assert stack.account(card_buyer)["credits_available"] == 10
    assert stack.account(elements_buyer)["credits_available"] == 10
    assert stack.account(refunded_buyer)["credits_available"] == 10 - 10 * 350 // 500  # 3 left


def test_forged_stale_future_and_tampered_webhooks_are_400(manual_stack: BillingStack) -> None:
    stack = manual_stack
    headers = stack.signup()
    pi_id = _elements_purchase(stack, headers)
    event = _event(stack, pi_id, "payment_intent.succeeded")
    now = int(time.time())
    cases = {
        "forged": stack.post_event(event, secret="whsec_not_the_gateways_secret"),
        "stale": stack.post_event(event, timestamp=now - 3600),
        "future": stack.post_event(event, timestamp=now + 3600),
    }
    genuine = json.dumps(event).encode()
    tampered = genuine.replace(b'"amount": 500,', b'"amount": 5,')
    assert tampered != genuine
    cases["tampered"] = stack.http.post("/v1/billing/webhook", content=tampered,
                                        headers={"Stripe-Signature": stack.sign(genuine)})
    cases["two timestamps"] = stack.http.post(
        "/v1/billing/webhook", content=genuine,
        headers={"Stripe-Signature": stack.sign(genuine) + f",t={now + 3600}"})
    for name, response in cases.items():
        assert response.status_code == 400, (name, response.text)
        assert response.json()["code"] == "invalid_webhook", name
    unsigned = stack.http.post("/v1/billing/webhook", content=json.dumps(event).encode())
    assert unsigned.status_code == 400 and "Stripe-Signature" in unsigned.json()["error"]
    assert stack.account(headers)["credits_available"] == 0
    # the genuine delivery credits, its replay is a no-op
    first = stack.post_event(event)
    assert first.status_code == 200 and first.json()["result"] == "credited", first.text
    again = stack.post_event(event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert stack.account(headers)["credits_available"] == 10


def test_refund_before_success_and_late_partial_refund(manual_stack: BillingStack) -> None:
    stack = manual_stack
    headers = stack.signup()
    pi_id = _elements_purchase(stack, headers)
    stack.stripe.v1.refunds.create(params={"payment_intent": pi_id, "amount": 130})
    stack.stripe.v1.refunds.create(params={"payment_intent": pi_id})
    partial, full = _event(stack, pi_id, "charge.refunded", 0), _event(stack, pi_id, "charge.refunded", 1)
    assert partial["data"]["object"]["amount_refunded"] == 130 and full["data"]["object"]["amount_refunded"] == 500
    succeeded = _event(stack, pi_id, "payment_intent.succeeded")
    # newest first, each twice: the full refund, the older partial refund, then the success itself
    results = [stack.post_event(e).json() for e in (full, full, partial, succeeded, partial, succeeded)]
    assert [r["result"] for r in results] == ["reversed", "reversed", "recorded", "already_credited",
                                              "recorded", "already_credited"], results
    assert [r["duplicate"] for r in results] == [False, True, False, False, True, True]
    assert stack.account(headers)["credits_available"] == 0


def test_dispute_closed_before_it_was_opened(manual_stack: BillingStack) -> None:
    stack = manual_stack
    headers = stack.signup()
    pi_id = _elements_purchase(stack, headers, "pm_card_createDispute")
    disputes = stack.stripe.v1.disputes.list(params={"limit": 100}).to_dict()["data"]
    dispute = next(d for d in disputes if d["payment_intent"] == pi_id)
    stack.sandbox.close_dispute(dispute["id"], "won")
    created = _event(stack, pi_id, "charge.dispute.created")
    closed = _event(stack, pi_id, "charge.dispute.closed")
    for event in (closed, created, _event(stack, pi_id, "payment_intent.succeeded")):
        assert stack.post_event(event).status_code == 200
    account = stack.account(headers)
    assert account["frozen"] is False and account["credits_available"] == 10


def test_unknown_event_types_are_acknowledged_and_ignored(manual_stack: BillingStack) -> None:
    event = {"id": "evt_unknown_kind_1", "object": "event", "type": "customer.created",
             "data": {"object": {"id": "cus_1", "object": "customer"}}, "created": int(time.time())}
    response = manual_stack.post_event(event)
    assert response.status_code == 200 and response.json()["result"] == "ignored"
    not_event = manual_stack.post_event({"hello": "world"})
    assert not_event.status_code == 400 and not_event.json()["code"] == "invalid_webhook"


def test_a_payment_that_does_not_match_its_purchase_credits_nothing(manual_stack: BillingStack) -> None:
    stack = manual_stack
    headers = stack.signup()
    started = stack.http.post("/v1/billing/payment-intents", json={"pack": "pack10"}, headers=headers).json()
    real = stack.stripe.v1.payment_intents.retrieve(started["payment_intent_id"]).to_dict()
    # someone else's (cheaper) payment on the same Stripe account that names our purchase
    cheap = stack.stripe.v1.payment_intents.create(params={
        "amount": 50, "currency": "usd", "payment_method": "pm_card_visa", "payment_method_types": ["card"],
        "confirm": True, "metadata": real["metadata"]}).to_dict()
    cheap_event = _event(stack, cheap["id"], "payment_intent.succeeded")
    assert stack.post_event(cheap_event).json()["result"] == "mismatch"
    assert stack.account(headers)["credits_available"] == 0
    stack.stripe.v1.payment_intents.confirm(real["id"], params={"payment_method": "pm_card_visa"})
    assert stack.post_event(_event(stack, real["id"], "payment_intent.succeeded")).json()["result"] == "credited"
    # the same amount but another PaymentIntent: the purchase is bound to its own, so no second credit
    twin = stack.stripe.v1.payment_intents.create(params={
        "amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "payment_method_types": ["card"],
        "confirm": True, "metadata": real["metadata"]}).to_dict()
    assert stack.post_event(_event(stack, twin["id"], "payment_intent.succeeded")).json()["result"] == "mismatch"
    assert stack.account(headers)["credits_available"] == 10


def test_a_signed_event_with_malformed_amounts_changes_nothing(manual_stack: BillingStack) -> None:
    stack = manual_stack
    headers = stack.signup()
    pi_id = _elements_purchase(stack, headers)
    assert stack.post_event(_event(stack, pi_id, "payment_intent.succeeded")).json()["result"] == "credited"
    stack.stripe.v1.refunds.create(params={"payment_intent": pi_id, "amount": 250})
    refunded = _event(stack, pi_id, "charge.refunded")
    for bad in ("250", -250, True, None):
        event = json.loads(json.dumps(refunded))
        event["id"] = f"{refunded['id']}_{bad}"
        event["data"]["object"]["amount_refunded"] = bad
        response = stack.post_event(event)
        assert response.status_code == 200 and response.json()["result"] == "malformed", (bad, response.text)
    assert stack.account(headers)["credits_available"] == 10
    assert stack.post_event(refunded).json()["result"] == "reversed"
    assert stack.account(headers)["credits_available"] == 5
