"""In-process pieces: form decoding, test cards, the bounded store, settings, the signature."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import stripe
from stripe._encode import _api_encode

from common.settings import ConfigError
from devnet.stripe.cards import PM_ALIASES, card_for_number, luhn_ok
from devnet.stripe.errors import StripeError
from devnet.stripe.forms import decode_form, read_metadata
from devnet.stripe.settings import parse_args
from devnet.stripe.store import IdempotencyRecord, Limits, Store
from devnet.stripe.webhooks import sign_payload


def test_forms_decode_what_the_stripe_library_encodes() -> None:
    params = {"amount": 500, "confirm": True, "expand": ["latest_charge", "payment_method"],
              "metadata": {"user": "7", "0": "digit key"},
              "line_items": [{"quantity": 1, "price_data": {"unit_amount": 250, "product_data": {"name": "x"}}},
                             {"quantity": 2, "price": "price_1"}]}
    body = urlencode(list(_api_encode(params)))
    assert decode_form(body) == {
        "amount": "500", "confirm": "true", "expand": ["latest_charge", "payment_method"],
        "metadata": {"user": "7", "0": "digit key"},
        "line_items": [{"quantity": "1", "price_data": {"unit_amount": "250", "product_data": {"name": "x"}}},
                       {"quantity": "2", "price": "price_1"}]}
    assert decode_form("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}


@pytest.mark.parametrize("body", ["a=1&a[b]=2", "a[b]=2&a=1", "a]=1", "=1"])
def test_forms_refuse_contradictions(body: str) -> None:
    with pytest.raises(StripeError) as caught:
        decode_form(body)
    assert caught.value.status == 400


def test_forms_limit_fields_and_metadata() -> None:
    with pytest.raises(StripeError):
        decode_form("&".join(f"k{i}=1" for i in range(1001)))
    with pytest.raises(StripeError):
        read_metadata({"metadata": {f"k{i}": "v" for i in range(51)}})
    assert read_metadata({"metadata": {"a": ""}}, {"a": "1", "b": "2"}) == {"b": "2"}
    assert read_metadata({"metadata": ""}, {"a": "1"}) == {}


def test_test_cards_match_stripes_testing_page() -> None:
    assert all(luhn_ok(number) for number in PM_ALIASES.values())
    assert card_for_number(PM_ALIASES["pm_card_chargeDeclinedInsufficientFunds"]).decline_code == "insufficient_funds"
    assert card_for_number(PM_ALIASES["pm_card_createDispute"]).outcome == "dispute"
    assert card_for_number(PM_ALIASES["pm_card_threeDSecure2Required"]).outcome == "authenticate"
    assert card_for_number("6011111111111117").brand == "discover"
    assert not luhn_ok("4242424242424241")


def test_store_is_bounded_and_keys_expire() -> None:
    store = Store(Limits(max_objects=4, max_events=2, max_idempotency_keys=2, idempotency_ttl_s=60))
    store.put({"id": "we_1", "object": "webhook_endpoint"})
    for i in range(5):
        store.put({"id": f"pi_{i}", "object": "payment_intent"}, private={"n": i})
    assert list(store.objects) == ["pi_2", "pi_3", "we_1", "pi_4"]  # an endpoint is never evicted
    assert [o["id"] for o in store.of_kind("payment_intent")] == ["pi_4", "pi_3", "pi_2"]
    assert "pi_0" not in store.private
    for i in range(3):
        store.add_event({"id": f"evt_{i}"})
    assert list(store.events) == ["evt_1", "evt_2"]
    old = IdempotencyRecord("POST", "/v1/x", "{}", 200, "{}", "req_1", time.time() - 61)
    store.remember("old", old)
    assert store.idempotent("old") is None
    for key in ("a", "b", "c"):
        store.remember(key, IdempotencyRecord("POST", "/v1/x", "{}", 200, "{}", "req", time.time()))
    assert list(store.idempotency) == ["b", "c"]
    restored = Store(store.limits)
    restored.load_state(store.to_state())
    assert restored.to_state() == store.to_state()


def test_settings_flags_over_environment_and_clear_errors() -> None:
    settings = parse_args(["--port", "0", "--webhook-url", "http://a/1", "--webhook-url", "http://b/2"],
                          env={"STRIPE_SANDBOX_PORT": "9", "STRIPE_SANDBOX_CHAOS_SEED": "5"})
    assert settings.port == 0 and settings.chaos_seed == 5
    assert settings.webhook_url == ("http://a/1", "http://b/2")
    assert settings.signing_secret.startswith("whsec_")
    assert parse_args([], env={"STRIPE_SANDBOX_WEBHOOK_SECRET": "whsec_abc"}).signing_secret == "whsec_abc"
    for env in ({"STRIPE_SANDBOX_PORT": "70000"}, {"STRIPE_SANDBOX_WEBHOOK_URL": "ftp://x"},
                {"STRIPE_SANDBOX_WEBHOOK_SECRET": "nope"}, {"STRIPE_SANDBOX_API_KEYS": "sk_live_1"},
                {"STRIPE_SANDBOX_WEBHOOK_RETRY_SCALE": "0"}):
        with pytest.raises(ConfigError) as caught:
            parse_args([], env=env)
        assert "STRIPE_SANDBOX_" in str(caught.value)


def test_signature_is_what_stripe_verifies() -> None:
    payload = '{"id": "evt_1", "object": "event"}'
    now = int(time.time())
    header = sign_payload(payload, "whsec_test", now)
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_test")
    expected = stripe.WebhookSignature._compute_signature(f"{now}.{payload}", "whsec_test")
    assert header == f"t={now},v1={expected}"
