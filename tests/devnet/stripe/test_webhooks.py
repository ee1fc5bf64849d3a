"""Webhook deliveries: Stripe's signature (checked by stripe.Webhook.construct_event), retries after
a 500 or a timeout, deliver-now, API-created endpoints, and seeded chaos (duplicates, reorderings)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe

from tests.support.stripe_fixture import StripeSandboxProcess, WebhookReceiver

CARD_ONLY: dict[str, Any] = {"payment_method_types": ["card"], "currency": "usd", "confirm": True}


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(*responses: int | str) -> WebhookReceiver:
        made.append(WebhookReceiver(responses or (200,)))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def _event(headers: dict[str, str], body: bytes, secret: str) -> Any:
    return stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], secret)


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_500_is_retried_then_delivered_with_valid_signatures(
        stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
        receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers(500, 200)
    sbx = stripe_sandbox_factory(webhook_urls=[receiver.url], webhook_events=["payment_intent.succeeded"])
    pi = sbx.client().v1.payment_intents.create(params={"amount": 500, "payment_method": "pm_card_visa",
                                                        **CARD_ONLY})
    requests = receiver.wait_for(2)
    events = [_event(headers, body, sbx.webhook_secret) for headers, body in requests]
    assert [e.type for e in events] == ["payment_intent.succeeded"] * 2
    assert events[0].id == events[1].id and events[0].data.object.id == pi.id
    assert requests[0][0]["Stripe-Signature"].startswith("t=")
    with pytest.raises(stripe.SignatureVerificationError):
        _event(*requests[0], "whsec_not_the_secret")
    _wait(lambda: len(sbx.deliveries()["attempts"]) == 2)
    attempts = list(reversed(sbx.deliveries(event=events[0].id)["attempts"]))
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [(1, "failed", 500),
                                                                                 (2, "succeeded", 200)]
    assert attempts[0]["next_retry_at"] is not None
    assert sbx.client().v1.events.retrieve(events[0].id).pending_webhooks == 0
    assert sbx.deliveries()["pending"] == []


def test_a_timeout_is_a_failed_attempt_and_is_retried(
        stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
        receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers("hang", 200)
    sbx = stripe_sandbox_factory(webhook_urls=[receiver.url], webhook_timeout_s=1.0,
                                 extra_args=["--webhook-events", "payment_intent.created"])
    sbx.client().v1.payment_intents.create(params={"amount": 500, "currency": "usd"})
    requests = receiver.wait_for(2)
    assert _event(*requests[1], sbx.webhook_secret).type == "payment_intent.created"
    _wait(lambda: len(sbx.deliveries()["attempts"]) == 2)
    first = sbx.deliveries()["attempts"][-1]
    assert first["outcome"] == "failed" and first["status_code"] is None and first["error"]


def test_deliver_now_sends_pending_retries_at_once(
        stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
        receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers(503, 200)
    sbx = stripe_sandbox_factory(webhook_urls=[receiver.url], retry_scale=1.0,
                                 extra_args=["--webhook-events", "charge.succeeded"])
    sbx.trigger("charge.succeeded")
    receiver.wait_for(1)
    _wait(lambda: len(sbx.deliveries()["pending"]) == 1 and len(sbx.deliveries()["attempts"]) == 1)
    pending = sbx.deliveries()["pending"][0]
    assert pending["due_at"] > time.time() + 30  # Stripe's first retry: a minute later
    assert sbx.deliver_now() == {"attempted": 1, "delivered": 1, "failed": 0, "pending": 0}
    assert len(receiver.requests) == 2
    assert _event(*receiver.requests[1], sbx.webhook_secret).type == "charge.succeeded"


def test_endpoint_created_through_the_api_gets_its_own_secret(
        stripe_sandbox: StripeSandboxProcess, receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers(200)
    client = stripe_sandbox.client()
    endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url,
                                                          "enabled_events": ["charge.refunded"]})
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    pi = client.v1.payment_intents.create(params={"amount": 800, "payment_method": "pm_card_visa", **CARD_ONLY})
    client.v1.refunds.create(params={"payment_intent": pi.id})
    headers, body = receiver.wait_for(1)[0]
    event = _event(headers, body, endpoint.secret)
    assert event.type == "charge.refunded"
    assert event.data.object.refunded is True
    assert event.data.previous_attributes.to_dict() == {"amount_refunded": 0, "refunded": False}
    deleted = client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(endpoint.id)


def test_chaos_duplicates_and_reorders_but_loses_nothing(
        stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
        receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers(200)
    sbx = stripe_sandbox_factory(webhook_urls=[receiver.url], chaos_seed=7)
    client = sbx.client()
    for i in range(6):
        client.v1.payment_intents.create(params={"amount": 500 + i, "payment_method": "pm_card_visa", **CARD_ONLY})
    created = [e.id for e in reversed(client.v1.events.list(params={"limit": 100}).data)]
    assert len(created) == 18
    _wait(lambda: not sbx.deliveries()["pending"] and len(receiver.requests) >= len(created))
    events = [_event(headers, body, sbx.webhook_secret) for headers, body in receiver.requests]  # all signed
    arrived = [e.id for e in events]
    assert set(arrived) == set(created)
    assert len(arrived) > len(created), "chaos sent no duplicate"
    first_arrivals = list(dict.fromkeys(arrived))
    assert first_arrivals != created, "chaos did not reorder"
    duplicates = [a for a in sbx.deliveries()["attempts"] if a["duplicate"]]
    assert len(duplicates) == len(arrived) - len(created)
    bodies: dict[str, set[str]] = {}
    for _, body in receiver.requests:
        bodies.setdefault(json.loads(body)["id"], set()).add(body.decode())
    assert all(len(v) == 1 for v in bodies.values()), "a duplicate must carry the same body"


def test_pending_deliveries_are_bounded(stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
                                        receivers: Callable[..., WebhookReceiver]) -> None:
    receiver = receivers(500)
    sbx = stripe_sandbox_factory(webhook_urls=[receiver.url], retry_scale=1.0,
                                 extra_args=["--max-delivery-attempts", "10"])
    client = sbx.client()
    for i in range(5):
        client.v1.payment_intents.create(params={"amount": 500 + i, "payment_method": "pm_card_visa", **CARD_ONLY})
        # every first attempt settled (none in flight), so the next enqueue may drop any pending one
        _wait(lambda: sbx.log_text().count("webhook_attempt") == 3 * (i + 1))  # noqa: B023
    assert len(sbx.deliveries()["pending"]) == 10
    assert sbx.log_text().count("webhook_delivery_dropped") == 5
