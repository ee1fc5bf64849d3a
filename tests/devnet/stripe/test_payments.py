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


def test_visa_succeeds_with_a_charge_id_that_expands(stripe_sandbox: StripeSandboxProcess) -> None:
    client = stripe_sandbox.client()
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
        stripe_sandbox: StripeSandboxProcess, pm: str, number: str, decline_code: str, message: str) -> None:
    client = stripe_sandbox.client()
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


def test_bad_api_key_is_an_authentication_error(stripe_sandbox: StripeSandboxProcess) -> None:
    for key in ("sk_live_nope1234567890", "rk_test_123456789", "sk_test_"):
        with pytest.raises(stripe.AuthenticationError) as caught:
            stripe_sandbox.client(api_key=key).v1.payment_intents.list()
        assert caught.value.http_status == 401
