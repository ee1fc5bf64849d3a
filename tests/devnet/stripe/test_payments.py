"""PaymentIntents with each test card, driven by the real stripe library against a sandbox process."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.support.stripe_fixture import StripeSandboxProcess

CARD_ONLY: dict[str, Any] = {"payment_method_types": ["card"]}


def _pay(client: Any, pm: str, amount: int = 500, **extra: Any) -> Any:
    return client.v1.payment_intents.create(params={"amount": amount, "currency": "usd", "payment_method": pm,
                                                    "confirm": True, **CARD_ONLY, **extra})


def test_visa_succeeds_with_a_charge_id_that_expands(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = _pay(client, "pm_card_visa", metadata={"user": "42"})
    assert pi.status == "succeeded"
    assert pi.amount_received == 500
    assert pi.metadata["user"] == "42"
    assert isinstance(pi.latest_charge, str) and pi.latest_charge.startswith("ch_")
    expanded = client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert expanded.latest_charge.id == pi.latest_charge
    assert expanded.latest_charge.paid and expanded.latest_charge.captured
    assert expanded.latest_charge.payment_intent == pi.id


@pytest.mark.parametrize(("pm", "number", "decline_code", "message"), [
    ("pm_card_chargeDeclined", "4000000000000002", "generic_decline", "Your card was declined."),
    ("pm_card_chargeDeclinedInsufficientFunds", "4000000000009995", "insufficient_funds",
     "Your card has insufficient funds."),
])
def test_declines_are_card_errors_leaving_requires_payment_method(
        sandbox: StripeSandboxProcess, pm: str, number: str, decline_code: str, message: str) -> None:
    client = sandbox.client()
    created = client.v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    for payment_method in (pm, created.id):
        with pytest.raises(stripe.CardError) as caught:
            _pay(client, payment_method)
        err = caught.value
        assert err.http_status == 402
        assert err.code == "card_declined"
        assert err.error is not None and err.error.decline_code == decline_code
        assert err.user_message == message
        intent = err.error.payment_intent
        assert intent is not None and intent.status == "requires_payment_method"
        fetched = client.v1.payment_intents.retrieve(intent.id)
        assert fetched.status == "requires_payment_method"
        assert fetched.last_payment_error.decline_code == decline_code
        charge = client.v1.charges.retrieve(fetched.latest_charge)
        assert charge.status == "failed" and charge.failure_code == "card_declined"


def test_bad_api_key_is_an_authentication_error(sandbox: StripeSandboxProcess) -> None:
    for key in ("sk_live_nope1234567890", "rk_test_123456789", "sk_test_"):
        with pytest.raises(stripe.AuthenticationError) as caught:
            sandbox.client(api_key=key).v1.payment_intents.list()
        assert caught.value.http_status == 401


@pytest.mark.parametrize("pm", ["pm_card_threeDSecure2Required", "pm_card_authenticationRequired"])
def test_three_d_secure_completed(sandbox: StripeSandboxProcess, pm: str) -> None:
    client = sandbox.client()
    pi = _pay(client, pm)
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    assert pi.latest_charge is None
    done = sandbox.authenticate(pi.id, "complete")
    assert done["status"] == "succeeded"
    fetched = client.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    assert fetched.status == "succeeded"
    assert fetched.latest_charge.payment_method_details.card.three_d_secure.result == "authenticated"
    types = [e.type for e in client.v1.events.list().data]
    assert types[:3] == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.requires_action"]


def test_three_d_secure_failed_leaves_requires_payment_method(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = _pay(client, "pm_card_threeDSecure2Required")
    sandbox.authenticate(pi.id, "fail")
    fetched = client.v1.payment_intents.retrieve(pi.id)
    assert fetched.status == "requires_payment_method"
    assert fetched.last_payment_error.code == "payment_intent_authentication_failure"
    assert fetched.payment_method is None
    assert client.v1.events.list(params={"limit": 1}).data[0].type == "payment_intent.payment_failed"
    retried = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert retried.status == "succeeded"


def test_three_d_secure_page_with_return_url(sandbox: StripeSandboxProcess) -> None:
    import urllib.parse
    import urllib.request

    client = sandbox.client()
    pi = _pay(client, "pm_card_threeDSecure2Required", return_url="http://127.0.0.1:9/back")
    assert pi.next_action.type == "redirect_to_url"
    page = pi.next_action.redirect_to_url.url
    assert page.startswith(sandbox.url + "/3ds/")
    with urllib.request.urlopen(page, timeout=30) as resp:
        assert "Complete authentication" in resp.read().decode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(urllib.request.Request(page, data=b"outcome=complete", method="POST"), timeout=30)
    assert caught.value.code == 303
    location = urllib.parse.urlparse(caught.value.headers["Location"])
    assert location.netloc == "127.0.0.1:9"
    assert urllib.parse.parse_qs(location.query)["redirect_status"] == ["succeeded"]
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_off_session_authentication_is_a_card_error(sandbox: StripeSandboxProcess) -> None:
    with pytest.raises(stripe.CardError) as caught:
        _pay(sandbox.client(), "pm_card_authenticationRequired", off_session=True)
    assert caught.value.code == "authentication_required"


def test_automatic_payment_methods_need_a_return_url_like_stripe(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(params={"amount": 500, "currency": "usd", "payment_method": "pm_card_visa",
                                                 "confirm": True})
    assert caught.value.param == "return_url"
    pi = client.v1.payment_intents.create(params={
        "amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}})
    assert pi.status == "succeeded"


def test_confirm_later_cancel_and_update(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd", **CARD_ONLY})
    assert pi.status == "requires_payment_method" and pi.client_secret.startswith(pi.id + "_secret_")
    updated = client.v1.payment_intents.update(pi.id, params={"metadata": {"pack": "p10"}, "amount": 1000})
    assert updated.amount == 1000 and updated.metadata["pack"] == "p10"
    confirmed = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_mastercard"})
    assert confirmed.status == "succeeded" and confirmed.amount_received == 1000
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.confirm(pi.id)
    assert again.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(pi.id)
    other = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    canceled = client.v1.payment_intents.cancel(other.id, params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled" and canceled.cancellation_reason == "abandoned"


def test_validation_errors_name_the_param(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"currency": "usd"}, "amount"),
        ({"amount": 500}, "currency"),
        ({"amount": 10, "currency": "usd"}, "amount"),
        ({"amount": 500, "currency": "usd", "bogus": "1"}, "bogus"),
        ({"amount": 500, "currency": "usd", "payment_method": "pm_nope"}, "payment_method"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.payment_intents.create(params=params)
        assert caught.value.param == param, (params, caught.value)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.retrieve("pi_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.CardError) as bad_number:
        client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4242424242424241",
                                                                          "exp_month": 1, "exp_year": 2035}})
    assert bad_number.value.code == "incorrect_number"


def test_publishable_key_does_what_stripe_js_does_and_nothing_else(sandbox: StripeSandboxProcess) -> None:
    server = sandbox.client()
    browser = sandbox.client(api_key=sandbox.publishable_key)
    pm = browser.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4000000000003220", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    pi = server.v1.payment_intents.create(params={"amount": 500, "currency": "usd", **CARD_ONLY})
    confirmed = browser.v1.payment_intents.confirm(pi.id, params={"payment_method": pm.id,
                                                                  "client_secret": pi.client_secret})
    assert confirmed.status == "requires_action"
    with pytest.raises(stripe.InvalidRequestError):
        browser.v1.payment_intents.retrieve(pi.id, params={"client_secret": "pi_x_secret_wrong"})
    assert browser.v1.payment_intents.retrieve(pi.id, params={"client_secret": pi.client_secret}).id == pi.id
    with pytest.raises(stripe.AuthenticationError):
        browser.v1.payment_intents.create(params={"amount": 500, "currency": "usd"})


def test_stripe_js_is_served(sandbox: StripeSandboxProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(sandbox.url + "/v3/", timeout=30) as resp:
        text = resp.read().decode()
        assert resp.headers["Content-Type"].startswith("application/javascript")
    assert "window.Stripe = Stripe" in text
    assert f'var API = "{sandbox.url}"' in text
    assert "createPaymentMethod" in text and "confirmCardPayment" in text


def test_manual_confirmation_waits_for_the_server_after_3ds(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = _pay(client, "pm_card_threeDSecure2Required", confirmation_method="manual")
    assert pi.status == "requires_action"
    assert sandbox.authenticate(pi.id, "complete")["status"] == "requires_confirmation"
    assert client.v1.payment_intents.retrieve(pi.id).latest_charge is None
    done = client.v1.payment_intents.confirm(pi.id)
    assert done.status == "succeeded" and done.latest_charge


def test_the_async_client_works_too(sandbox: StripeSandboxProcess) -> None:
    import asyncio

    async def run() -> tuple[str, str]:
        client = sandbox.client()
        pi = await client.v1.payment_intents.create_async(params={
            "amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True, **CARD_ONLY},
            options={"idempotency_key": "async-1"})
        again = await client.v1.payment_intents.retrieve_async(pi.id)
        return pi.status, again.id

    status, _ = asyncio.run(run())
    assert status == "succeeded"


# What docs.stripe.com/testing says each test PaymentMethod does (written out here, not read from cards.py)
STRIPE_TESTING_PAGE: list[tuple[str, str, str | None, str | None]] = [
    ("pm_card_visa", "succeeded", None, None),
    ("pm_card_visa_debit", "succeeded", None, None),
    ("pm_card_mastercard", "succeeded", None, None),
    ("pm_card_amex", "succeeded", None, None),
    ("pm_card_chargeDeclined", "declined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "declined", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "declined", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "declined", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "declined", "expired_card", None),
    ("pm_card_chargeDeclinedIncorrectCvc", "declined", "incorrect_cvc", None),
    ("pm_card_chargeDeclinedProcessingError", "declined", "processing_error", None),
    ("pm_card_authenticationRequired", "requires_action", None, None),
    ("pm_card_authenticationRequiredOnSetup", "requires_action", None, None),
    ("pm_card_threeDSecure2Required", "requires_action", None, None),
    ("pm_card_createDispute", "disputed", None, None),
    ("pm_card_createDisputeProductNotReceived", "disputed", None, None),
]


def test_every_test_card_behaves_as_the_testing_page_says(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    for pm, outcome, code, decline_code in STRIPE_TESTING_PAGE:
        if outcome == "declined":
            with pytest.raises(stripe.CardError) as caught:
                _pay(client, pm)
            assert caught.value.code == code, pm
            if decline_code is not None:
                assert caught.value.error.decline_code == decline_code, pm  # type: ignore[union-attr]
            continue
        pi = _pay(client, pm)
        if outcome == "disputed":
            assert pi.status == "succeeded", pm
            assert len(client.v1.disputes.list(params={"payment_intent": pi.id}).data) == 1, pm
        else:
            assert pi.status == outcome, pm
            if outcome == "succeeded":
                assert client.v1.disputes.list(params={"payment_intent": pi.id}).data == [], pm


def test_list_expansion(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    _pay(client, "pm_card_visa")
    listed = client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert isinstance(listed.data[0].latest_charge, stripe.Charge)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.list(params={"expand": ["data.nothing"]})
    assert caught.value.param == "expand"


def test_an_alias_makes_one_payment_method_which_the_intent_and_charge_name(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = _pay(client, "pm_card_visa")
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert pi.payment_method == charge.payment_method
    assert client.v1.payment_methods.retrieve(pi.payment_method).card.last4 == "4242"
    balance = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert balance.source == charge.id and balance.amount == 500 and balance.net == 500 - balance.fee


def test_expand_refuses_unexpandable_fields_before_anything_runs(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create(params={"amount": 500, "currency": "usd", "expand": ["amount"]})
    assert caught.value.param == "expand" and "cannot be expanded (amount)" in str(caught.value)
    assert client.v1.payment_intents.list().data == []
    pi = _pay(client, "pm_card_visa", expand=["latest_charge.balance_transaction"])
    assert pi.latest_charge.balance_transaction.amount == 500
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(pi.id, params={"expand": ["metadata"]})
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "http://127.0.0.1:9/ok",
        "line_items": [{"quantity": 3, "price_data": {"currency": "usd", "unit_amount": 200,
                                                      "product_data": {"name": "credits"}}}]})
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert [(i.quantity, i.amount_total) for i in expanded.line_items.data] == [(3, 600)]
