"""Card purchases end to end: the real gateway over HTTP, the Stripe sandbox process, real webhooks."""

from __future__ import annotations

from typing import Any

from tests.gateway.billing.conftest import BillingStack, wait_until


def test_packs_are_public_server_config(billing_stack: BillingStack) -> None:
    response = billing_stack.http.get("/v1/billing/packs")
    assert response.status_code == 200
    assert response.json() == [
        {"id": "pack10", "credits": 10, "amount": 500, "currency": "usd", "label": "10 credits for $5.00"},
        {"id": "pack50", "credits": 50, "amount": 2000, "currency": "usd", "label": "50 credits for $20.00"},
    ]


def test_card_purchase_credits_once_through_confirm_and_webhook(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    response = billing_stack.buy(headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["credits"] == 10 and body["credits_available"] == 10
    assert body["client_secret"] is None and body["requires_action"] is False
    pi = billing_stack.stripe.v1.payment_intents.retrieve(body["payment_intent_id"]).to_dict()
    assert pi["amount"] == 500 and pi["currency"] == "usd" and pi["status"] == "succeeded"
    assert pi["metadata"]["purchase_id"] == body["purchase_id"] and pi["metadata"]["credits"] == "10"
    # the webhook for the same PaymentIntent arrives after the synchronous credit: a no-op
    succeeded = [e["id"] for e in billing_stack.events_of(pi["id"]) if e["type"] == "payment_intent.succeeded"]
    assert len(succeeded) == 1
    attempts = billing_stack.wait_delivered(succeeded)
    answered = [a for a in attempts if a["event"] == succeeded[0] and a["outcome"] == "succeeded"]
    assert '"already_credited"' in answered[0]["response_body"]
    assert billing_stack.account(headers)["credits_available"] == 10
    purchase = billing_stack.http.get(f"/v1/billing/purchases/{body['purchase_id']}", headers=headers).json()
    assert purchase["status"] == "succeeded" and purchase["credited"] is True
    metrics = billing_stack.http.get("/metrics").text
    assert 'gateway_billing_webhook_events_total{result="already_credited",type="payment_intent.succeeded"}' in metrics
    assert 'gateway_billing_purchases_total{flow="card",result="succeeded"}' in metrics


def test_elements_payment_intent_is_credited_by_the_webhook(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    response = billing_stack.http.post("/v1/billing/payment-intents", json={"pack": "pack50"}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert body["amount"] == 2000 and body["publishable_key"] == billing_stack.sandbox.publishable_key
    assert billing_stack.account(headers)["credits_available"] == 0
    # what Stripe.js does in the browser with the client secret
    billing_stack.stripe.v1.payment_intents.confirm(body["payment_intent_id"],
                                                    params={"payment_method": "pm_card_visa"})
    billing_stack.wait_account(headers, "webhook credit", credits_available=50)


def test_checkout_session_is_credited_once(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    response = billing_stack.http.post("/v1/billing/checkout", json={"pack": "pack10"}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["url"].startswith(billing_stack.sandbox.url + "/checkout/")
    session = billing_stack.stripe.v1.checkout.sessions.retrieve(body["checkout_session_id"]).to_dict()
    assert session["client_reference_id"] == body["purchase_id"]
    assert session["success_url"].startswith(billing_stack.gateway.url)
    status, paid = billing_stack.sandbox.pay_checkout(body["checkout_session_id"])
    assert status == 200, paid
    billing_stack.wait_account(headers, "checkout credit", credits_available=10)
    pi_id = billing_stack.stripe.v1.checkout.sessions.retrieve(body["checkout_session_id"]).to_dict()["payment_intent"]
    ids = [e["id"] for e in billing_stack.events_of(pi_id)
           if e["type"] in ("payment_intent.succeeded", "checkout.session.completed")]
    assert len(ids) == 2
    billing_stack.wait_delivered(ids)
    assert billing_stack.account(headers)["credits_available"] == 10


def test_three_d_secure_purchase(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    response = billing_stack.buy(headers, "pm_card_threeDSecure2Required")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "requires_action" and body["requires_action"] is True
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert billing_stack.account(headers)["credits_available"] == 0
    billing_stack.sandbox.authenticate(body["payment_intent_id"], "complete")  # the bank's challenge page
    billing_stack.wait_account(headers, "3-D Secure completed", credits_available=10)

    failing = billing_stack.buy(headers, "pm_card_authenticationRequired").json()
    assert failing["status"] == "requires_action"
    billing_stack.sandbox.authenticate(failing["payment_intent_id"], "fail")

    def failed() -> dict[str, Any] | None:
        p = billing_stack.http.get(f"/v1/billing/purchases/{failing['purchase_id']}", headers=headers).json()
        return p if p["status"] == "failed" else None

    purchase = wait_until(failed, "the failed challenge recorded")
    assert purchase["credited"] is False
    assert billing_stack.account(headers)["credits_available"] == 10


def test_declined_cards_are_402_with_the_decline_code(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    for card, decline_code in (("pm_card_chargeDeclined", "generic_decline"),
                               ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds")):
        response = billing_stack.buy(headers, card)
        assert response.status_code == 402, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "card_declined" and problem["decline_code"] == decline_code
        assert problem["error"] and problem["payment_intent_id"].startswith("pi_")
        purchase = billing_stack.http.get(f"/v1/billing/purchases/{problem['purchase_id']}", headers=headers).json()
        assert purchase["status"] == "failed" and purchase["decline_code"] == decline_code
    assert billing_stack.account(headers)["credits_available"] == 0


def test_idempotency_key_replays_the_same_purchase(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    first = billing_stack.buy(headers, **{"Idempotency-Key": "buy-once-1"})
    again = billing_stack.buy(headers, **{"Idempotency-Key": "buy-once-1"})
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["purchase_id"] == again.json()["purchase_id"]
    assert first.json()["payment_intent_id"] == again.json()["payment_intent_id"]
    assert billing_stack.account(headers)["credits_available"] == 10
    other = billing_stack.buy(headers, pack="pack50", **{"Idempotency-Key": "buy-once-1"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_concurrent_retries_with_one_key_charge_once(billing_stack: BillingStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = billing_stack.signup()
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: billing_stack.buy(headers, **{"Idempotency-Key": "double-click"}),
                                  range(4)))
    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    succeeded = [r.json() for r in responses if r.status_code == 200]
    assert succeeded and len({s["purchase_id"] for s in succeeded}) == 1
    intents = billing_stack.stripe.v1.payment_intents.list(params={"limit": 100}).to_dict()["data"]
    assert len([pi for pi in intents if pi["metadata"].get("purchase_id") == succeeded[0]["purchase_id"]]) == 1
    assert billing_stack.account(headers)["credits_available"] == 10
