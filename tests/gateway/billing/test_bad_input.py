"""Bad input on every billing endpoint gets a 4xx problem with a clear message, never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.gateway.billing.conftest import BillingStack
from tests.gateway.conftest import MakeGateway, signup


def _problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["error"] and body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.mark.parametrize(("body", "code", "mentions"), [
    ({"paymentMethodId": "pm_card_visa", "pack": "pack-nope"}, "unknown_pack", "pack10"),
    ({"paymentMethodId": "pm_card_visa", "pack": 5}, "invalid_request", "str"),
    ({"paymentMethodId": 4242, "pack": "pack10"}, "invalid_request", "paymentMethodId"),
    ({"pack": "pack10"}, "invalid_request", "paymentMethodId"),
    ({"paymentMethodId": "pm_card_visa"}, "invalid_request", "pack"),
    ({"paymentMethodId": "4242424242424242", "pack": "pack10"}, "invalid_request", "pm_"),
    ({"paymentMethodId": "pm_card_visa", "pack": "pack10", "amount": 1}, "invalid_request", "amount"),
    ({"paymentMethodId": "pm_card_visa", "pack": "pack10", "credits": 1000}, "invalid_request", "credits"),
    (["pm_card_visa", "pack10"], "invalid_request", None),
])
def test_purchase_credits_refuses_bad_bodies(billing_stack: BillingStack, body: Any, code: str,
                                             mentions: str | None) -> None:
    headers = billing_stack.signup()
    problem = _problem(billing_stack.http.post("/api/billing/purchase-credits", json=body, headers=headers), 400, code)
    if mentions:
        assert mentions in problem["error"], problem
    assert billing_stack.account(headers)["credits_available"] == 0


def test_amount_sent_by_the_client_never_reaches_stripe(billing_stack: BillingStack) -> None:
    headers = billing_stack.signup()
    before = len(billing_stack.stripe.v1.payment_intents.list(params={"limit": 100}).to_dict()["data"])
    billing_stack.http.post("/api/billing/purchase-credits", headers=headers,
                            json={"paymentMethodId": "pm_card_visa", "pack": "pack10", "amount": 1})
    after = len(billing_stack.stripe.v1.payment_intents.list(params={"limit": 100}).to_dict()["data"])
    assert after == before


def test_other_bad_requests(billing_stack: BillingStack) -> None:
    http, headers = billing_stack.http, billing_stack.signup()
    _problem(http.post("/api/billing/purchase-credits", content=b"{not json", headers={
        **headers, "Content-Type": "application/json"}), 400)
    _problem(http.post("/api/billing/purchase-credits", json={"paymentMethodId": "pm_card_visa", "pack": "pack10"}),
             401, "unauthorized")
    huge = json.dumps({"paymentMethodId": "pm_card_visa", "pack": "pack10", "x": "y" * 100_000}).encode()
    _problem(http.post("/api/billing/purchase-credits", content=huge, headers={
        **headers, "Content-Type": "application/json"}), 413)
    _problem(billing_stack.buy(headers, "pm_does_not_exist"), 400, "invalid_payment_method")
    _problem(billing_stack.buy(headers, **{"Idempotency-Key": "k" * 300}), 400)
    for path in ("/v1/billing/payment-intents", "/v1/billing/checkout"):
        _problem(http.post(path, json={"pack": "nope"}, headers=headers), 400, "unknown_pack")
        _problem(http.post(path, json={"pack": "pack10", "amount": 1}, headers=headers), 400, "invalid_request")
        _problem(http.post(path, json={"pack": "pack10"}), 401)
    bought = billing_stack.buy(headers).json()
    stranger = billing_stack.signup()
    _problem(http.get(f"/v1/billing/purchases/{bought['purchase_id']}", headers=stranger), 404, "purchase_not_found")
    _problem(http.get("/v1/billing/purchases/pur_nope", headers=headers), 404)
    assert billing_stack.account(headers)["credits_available"] == 10


def test_bad_webhook_requests(billing_stack: BillingStack) -> None:
    http = billing_stack.http
    _problem(http.post("/v1/billing/webhook", content=b"{}"), 400, "invalid_webhook")
    _problem(http.post("/v1/billing/webhook", content=b"\xff\xfe", headers={"Stripe-Signature": "t=1,v1=00"}), 400)
    _problem(http.post("/v1/billing/webhook", content=b"{}", headers={"Stripe-Signature": "garbage"}), 400)
    _problem(billing_stack.post_event(b"not json at all"), 400, "invalid_webhook")
    _problem(billing_stack.post_event(b"x" * 100_000), 413)


async def test_without_stripe_keys_billing_answers_503_and_health_says_so(make_gateway: MakeGateway,
                                                                           tmp_path: Path) -> None:
    built = await make_gateway()
    async with AsyncTestClient(app=built.app) as client:
        tokens = await signup(client)
        response = await client.post("/api/billing/purchase-credits", headers=tokens["headers"],
                                     json={"paymentMethodId": "pm_card_visa", "pack": "pack10"})
        problem = _problem(response, 503, "billing_unavailable")
        assert "GATEWAY_STRIPE_SECRET_KEY_FILE" in problem["error"]
        _problem(await client.post("/v1/billing/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}),
                 503, "billing_unavailable")
        assert (await client.get("/v1/billing/packs")).status_code == 200
        health = (await client.get("/health")).json()
        assert health["checks"]["billing"]["degraded"] is True


def test_production_refuses_to_start_without_stripe_secrets(tmp_path: Path) -> None:
    from common.settings import ConfigError
    from gateway.billing.domain import stripe_billing
    from tests.gateway.conftest import gateway_settings

    with pytest.raises(ConfigError, match="GATEWAY_STRIPE_SECRET_KEY_FILE"):
        stripe_billing(gateway_settings(tmp_path, require_secrets=True))
    with pytest.raises(ConfigError, match="sk_live_ or sk_test_"):
        stripe_billing(gateway_settings(tmp_path, stripe_secret_key="pk_test_oops"))
    with pytest.raises(ConfigError, match="whsec_"):
        stripe_billing(gateway_settings(tmp_path, stripe_secret_key="sk_test_x", stripe_webhook_secret="nope"))


def test_purchase_attempts_are_rate_limited_per_artist(billing_stack: BillingStack) -> None:
    headers, other = billing_stack.signup(), billing_stack.signup()
    limit = billing_stack.gateway.settings.purchase_rate_per_minute
    statuses = []
    for _ in range(2 * limit + 1):  # a minute boundary may reset the window once
        response = billing_stack.http.post("/v1/billing/payment-intents", json={"pack": "pack10"}, headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            problem = _problem(response, 429, "rate_limited")
            assert int(response.headers["Retry-After"]) >= 1 and "purchase" in problem["error"]
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {201}, statuses
    # another artist is not affected
    assert billing_stack.http.post("/v1/billing/payment-intents", json={"pack": "pack10"},
                                   headers=other).status_code == 201
