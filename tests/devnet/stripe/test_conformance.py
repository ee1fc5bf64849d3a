"""Every object the sandbox returns has the shape of Stripe's own example of that resource: same keys,
same JSON types, same ``object``, same id prefix (fixtures/stripe_examples.json), and only fields the
installed stripe package's resource class knows, null only where that class says Optional."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from tests.devnet.stripe.conformance import EXAMPLES, conformance_problems
from tests.support.stripe_fixture import StripeSandboxProcess

CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123"}


def raw(obj: Any) -> dict[str, Any]:
    """The JSON the sandbox sent for ``obj`` (the library keeps the response body)."""
    return json.loads(obj.last_response.body)  # type: ignore[no-any-return]


def _objects(sbx: StripeSandboxProcess) -> list[dict[str, Any]]:
    client = sbx.client()
    out: list[dict[str, Any]] = []
    pm = client.v1.payment_methods.create(params={"type": "card", "card": {"number": "4242424242424242", **CARD},
                                                  "billing_details": {"email": "a@example.com"}})
    out += [raw(pm), raw(client.v1.payment_methods.retrieve(pm.id))]
    ok = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "payment_method": pm.id,
                                                  "payment_method_types": ["card"], "confirm": True})
    out += [raw(ok), raw(client.v1.charges.retrieve(ok.latest_charge))]
    out.append(raw(client.v1.balance_transactions.retrieve(client.v1.charges.retrieve(ok.latest_charge)
                                                           .balance_transaction)))
    refund = client.v1.refunds.create(params={"payment_intent": ok.id, "amount": 300})
    out += [raw(refund), raw(client.v1.refunds.retrieve(refund.id)), raw(client.v1.charges.retrieve(ok.latest_charge))]
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                 "payment_method": "pm_card_chargeDeclined",
                                                 "payment_method_types": ["card"]})
    failed = client.v1.payment_intents.retrieve(declined.value.error.payment_intent.id)  # type: ignore[union-attr]
    out += [raw(failed), raw(client.v1.charges.retrieve(failed.latest_charge))]
    three_ds = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                        "payment_method": "pm_card_threeDSecure2Required",
                                                        "return_url": "http://127.0.0.1/done"})
    out.append(raw(three_ds))
    pending = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    out += [raw(pending), raw(client.v1.payment_intents.cancel(pending.id))]
    disputed = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                        "payment_method": "pm_card_createDispute",
                                                        "payment_method_types": ["card"]})
    dispute = client.v1.disputes.list(params={"payment_intent": disputed.id}).data[0]
    out.append(raw(client.v1.disputes.retrieve(dispute.id)))
    sbx.close_dispute(dispute.id, "won")
    out.append(raw(client.v1.disputes.retrieve(dispute.id)))
    session_params = {"mode": "payment", "success_url": "http://127.0.0.1/ok", "cancel_url": "http://127.0.0.1/no",
                      "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                                    "product_data": {"name": "10 credits"}}}]}
    paid = client.v1.checkout.sessions.create(params=session_params)
    out.append(raw(paid))
    assert sbx.pay_checkout(paid.id)[0] == 200
    out.append(raw(client.v1.checkout.sessions.retrieve(paid.id)))
    expired = client.v1.checkout.sessions.create(params=session_params)
    out.append(raw(client.v1.checkout.sessions.expire(expired.id)))
    endpoint = client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/h", "enabled_events": ["*"]})
    out += [raw(endpoint), raw(client.v1.webhook_endpoints.retrieve(endpoint.id))]
    events = client.v1.events.list(params={"limit": 100})
    assert not events.has_more
    out += [raw(client.v1.events.retrieve(event.id)) for event in events.data]
    return out


def test_every_object_has_the_shape_of_stripes_example(sandbox: StripeSandboxProcess) -> None:
    objects = _objects(sandbox)
    kinds = {o["object"] for o in objects}
    assert kinds == set(EXAMPLES), f"not every resource was exercised: {set(EXAMPLES) - kinds}"
    event_types = {o["type"] for o in objects if o["object"] == "event"}
    assert {"payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
            "payment_intent.requires_action", "payment_intent.canceled", "charge.succeeded", "charge.failed",
            "charge.refunded", "refund.created", "charge.dispute.created", "charge.dispute.closed",
            "checkout.session.completed", "checkout.session.expired"} <= event_types
    problems = {f"{o['object']} {o['id']}": conformance_problems(o) for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_check_catches_a_missing_key_a_wrong_type_and_a_bad_null(sandbox: StripeSandboxProcess) -> None:
    client = sandbox.client()
    pi = raw(client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}))
    assert conformance_problems(pi) == []
    mutations: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda o: o.pop("latest_charge"), "missing ['latest_charge']"),
        (lambda o: o.update(amount="1000"), "payment_intent.amount: string"),
        (lambda o: o.update(status=None), "payment_intent.status: null"),
        (lambda o: o.update(id="ch_123"), "prefix"),
        (lambda o: o.update(surprise=1), "surprise"),
        (lambda o: o["amount_details"].update(tip=[]), "amount_details.tip: array"),
    ]
    for mutate, expected in mutations:
        bad = copy.deepcopy(pi)
        mutate(bad)
        found = conformance_problems(bad)
        assert any(expected in p for p in found), (expected, found)
