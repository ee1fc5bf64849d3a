"""Idempotency, refunds, disputes and Checkout Sessions, through the real stripe library."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
import stripe

from tests.support.stripe_fixture import StripeSandboxProcess

PAY: dict[str, Any] = {"currency": "usd", "confirm": True, "payment_method_types": ["card"]}
SESSION: dict[str, Any] = {
    "mode": "payment", "success_url": "http://127.0.0.1:9/ok?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://127.0.0.1:9/cancel", "client_reference_id": "user-7", "metadata": {"pack": "p10"},
    "line_items": [{"quantity": 2, "price_data": {"currency": "usd", "unit_amount": 250,
                                                  "product_data": {"name": "10 credits"}}}],
}


def test_same_key_same_params_replays_the_first_answer(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    params = {"amount": 500, "payment_method": "pm_card_visa", **PAY}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "buy-1"})
    second = client.v1.payment_intents.create(params=params, options={"idempotency_key": "buy-1"})
    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.body == first.last_response.body
    assert len(client.v1.payment_intents.list().data) == 1
    assert len(client.v1.charges.list().data) == 1


def test_a_replayed_decline_is_the_same_error_and_no_new_attempt(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    params = {"amount": 500, "payment_method": "pm_card_chargeDeclined", **PAY}
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "buy-2"})
        errors.append(caught.value)
    assert errors[0].error.payment_intent.id == errors[1].error.payment_intent.id  # type: ignore[union-attr]
    assert errors[0].http_body == errors[1].http_body
    assert len(client.v1.charges.list().data) == 1


def test_same_key_other_params_or_endpoint_is_an_idempotency_error(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    client.v1.payment_intents.create(params={"amount": 500, "currency": "usd"}, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.payment_intents.create(params={"amount": 600, "currency": "usd"}, options={"idempotency_key": "k"})
    assert caught.value.http_status == 400
    assert "same parameters" in str(caught.value)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(params={"charge": "ch_x"}, options={"idempotency_key": "k"})
    assert len(client.v1.payment_intents.list().data) == 1


def test_validation_errors_are_not_kept_for_the_key(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params={"currency": "usd"}, options={"idempotency_key": "fix-me"})
    fixed = client.v1.payment_intents.create(params={"amount": 500, "currency": "usd"},
                                             options={"idempotency_key": "fix-me"})
    assert fixed.status == "requires_payment_method"


def test_partial_then_full_refund(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 1000, "payment_method": "pm_card_visa", **PAY})
    partial = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300,
                                               "reason": "requested_by_customer"})
    assert partial.status == "succeeded" and partial.amount == 300 and partial.charge == pi.latest_charge
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_refunded == 300 and charge.refunded is False
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 701})
    assert too_much.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 700
    charge = client.v1.charges.retrieve(charge.id)
    assert charge.amount_refunded == 1000 and charge.refunded is True
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id}).data] == [rest.id, partial.id]
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": charge.id})
    assert again.value.code == "charge_already_refunded"
    refunded_events = client.v1.events.list(params={"type": "charge.refunded"}).data
    assert [e.data.object.amount_refunded for e in refunded_events] == [1000, 300]


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_dispute_opens_after_payment_and_closes(sandbox: StripeSandboxProcess, outcome: str) -> None:
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 1500, "payment_method": "pm_card_createDispute", **PAY})
    assert pi.status == "succeeded"
    disputes = client.v1.disputes.list(params={"charge": pi.latest_charge}).data
    assert len(disputes) == 1
    dispute = disputes[0]
    assert dispute.status == "needs_response" and dispute.reason == "fraudulent" and dispute.amount == 1500
    assert client.v1.charges.retrieve(pi.latest_charge).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refund:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.value.code == "charge_disputed"
    closed = sandbox.close_dispute(dispute.id, outcome)
    assert closed["status"] == outcome
    assert client.v1.disputes.retrieve(dispute.id).status == outcome
    types = [e.type for e in client.v1.events.list(params={"type": "charge.dispute.*"}).data]
    assert types[-2:] == ["charge.dispute.funds_withdrawn", "charge.dispute.created"]
    assert "charge.dispute.closed" in types
    assert ("charge.dispute.funds_reinstated" in types) == (outcome == "won")
    status, body = sandbox.control("POST", f"/_sandbox/disputes/{dispute.id}/close", {"outcome": "won"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


def test_checkout_session_paid(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params=SESSION)
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.amount_total == 500 and session.url == f"{sandbox.url}/checkout/{session.id}"
    with urllib.request.urlopen(session.url, timeout=30) as page:
        assert "Pay 5.00 USD" in page.read().decode()
    status, body = sandbox.pay_checkout(session.id, card={"number": "4000000000000002", "exp_month": 12,
                                                          "exp_year": 2034, "cvc": "123"})
    assert status == 402 and body["error"]["decline_code"] == "generic_decline"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    status, _ = sandbox.pay_checkout(session.id, email="artist@example.com")
    assert status == 200
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert done.status == "complete" and done.payment_status == "paid" and done.url is None
    assert done.payment_intent.status == "succeeded" and done.payment_intent.amount == 500
    assert done.customer_details.email == "artist@example.com"
    completed = client.v1.events.list(params={"type": "checkout.session.completed"}).data
    assert [e.data.object.id for e in completed] == [session.id]
    assert completed[0].data.object.client_reference_id == "user-7"
    assert completed[0].data.object.metadata["pack"] == "p10"
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [("10 credits", 2, 500)]


def test_checkout_page_form_redirects_to_success_url(sandbox: StripeSandboxProcess) -> None:
    session = sandbox.client().v1.checkout.sessions.create(params=SESSION)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    form = b"email=a%40example.com&number=4242+4242+4242+4242&exp_month=12&exp_year=2034&cvc=123"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(NoRedirect).open(
            urllib.request.Request(session.url, data=form, method="POST"), timeout=30)
    assert caught.value.code == 303
    assert caught.value.headers["Location"] == f"http://127.0.0.1:9/ok?session={session.id}"


def test_checkout_session_expired(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params=SESSION)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert sandbox.pay_checkout(session.id)[0] == 400
    assert client.v1.events.list(params={"limit": 1}).data[0].type == "checkout.session.expired"


def test_events_paginate_with_has_more(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    for amount in (500, 600, 700):
        client.v1.payment_intents.create(params={"amount": amount, "payment_method": "pm_card_visa", **PAY})
    page = client.v1.events.list(params={"limit": 4})
    assert len(page.data) == 4 and page.has_more
    rest = client.v1.events.list(params={"limit": 100, "starting_after": page.data[-1].id})
    assert len(rest.data) == 5 and not rest.has_more
    every = [e.id for e in client.v1.events.list(params={"limit": 4}).auto_paging_iter()]
    assert every == [e.id for e in page.data] + [e.id for e in rest.data]
    assert client.v1.events.retrieve(every[0]).id == every[0]
    created = [e.created for e in page.data + rest.data]
    assert created == sorted(created, reverse=True)


def test_checkout_session_expires_by_itself_at_expires_at(sandbox: StripeSandboxProcess) -> None:
    import time

    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params={**SESSION, "expires_at": int(time.time()) + 2})
    deadline = time.monotonic() + 30
    while client.v1.checkout.sessions.retrieve(session.id).status == "open":
        assert time.monotonic() < deadline, "the session never expired"
        time.sleep(0.2)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    expired = client.v1.events.list(params={"type": "checkout.session.expired"}).data
    assert [e.data.object.id for e in expired] == [session.id]
    assert expired[0].request.id is None  # not caused by an API request
