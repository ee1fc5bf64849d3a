"""The gateway dies after Stripe charged the card and before it credited: nothing is lost or doubled.

The ``Billing`` below is the real ``StripeBilling`` (real sandbox, real charge) that raises once its
call returned, which is what a crash at that instant looks like to everything after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.billing.domain import stripe_billing
from gateway.billing.processor import Billing, PaymentIntentView, StripeBilling
from tests.gateway.billing.conftest import BillingStack, make_stack


class CrashAfterStripe:
    """Delegates to the real Stripe client; the first ``crashes`` answers are lost on the way back."""

    def __init__(self, crashes: int = 1) -> None:
        self.real: StripeBilling | None = None
        self.crashes = crashes

    @property
    def configured(self) -> bool:
        return True

    async def create_payment_intent(self, **kwargs: Any) -> PaymentIntentView:
        assert self.real is not None
        intent = await self.real.create_payment_intent(**kwargs)
        if self.crashes > 0:
            self.crashes -= 1
            raise RuntimeError("simulated crash after Stripe answered")
        return intent

    async def create_checkout_session(self, **kwargs: Any) -> Any:
        assert self.real is not None
        return await self.real.create_checkout_session(**kwargs)

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        assert self.real is not None
        return self.real.verify_webhook(payload, signature_header)


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BillingStack, CrashAfterStripe]]:
    billing = CrashAfterStripe()
    stack = make_stack(tmp_path_factory.mktemp("billing-crash"), provide={Billing: billing})
    billing.real = stripe_billing(stack.gateway.settings)
    yield stack, billing
    stack.close()


def test_the_webhook_credits_what_the_crash_lost(crashing: tuple[BillingStack, CrashAfterStripe]) -> None:
    stack, billing = crashing
    billing.crashes = 1
    headers = stack.signup()
    lost = stack.buy(headers)
    assert lost.status_code == 500 and "Traceback" not in lost.text  # the answer never made it back
    stack.wait_account(headers, "the webhook's credit", credits_available=10)


def test_a_retry_with_the_same_key_replays_stripe_and_credits_once(
        crashing: tuple[BillingStack, CrashAfterStripe]) -> None:
    stack, billing = crashing
    billing.crashes = 1
    headers = stack.signup()
    assert stack.buy(headers, **{"Idempotency-Key": "after-crash"}).status_code == 500
    retried = stack.buy(headers, **{"Idempotency-Key": "after-crash"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    purchase_id = retried.json()["purchase_id"]
    intents = stack.stripe.v1.payment_intents.list(params={"limit": 100}).to_dict()["data"]
    charged = [pi for pi in intents if pi["metadata"].get("purchase_id") == purchase_id]
    assert len(charged) == 1 and charged[0]["id"] == retried.json()["payment_intent_id"]
    succeeded = [e["id"] for e in stack.events_of(charged[0]["id"]) if e["type"] == "payment_intent.succeeded"]
    stack.wait_delivered(succeeded)
    assert stack.account(headers)["credits_available"] == 10
