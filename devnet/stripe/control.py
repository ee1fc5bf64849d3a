"""Sandbox-only controls under ``/_sandbox/`` (no Stripe has these): trigger events, drive webhook
deliveries, close disputes, finish 3-D Secure, pay Checkout Sessions, reset. JSON in, JSON out;
errors in Stripe's error shape."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devnet.stripe import checkout, disputes, payment_intents, refunds
from devnet.stripe.api import SANDBOX_KEY, json_response
from devnet.stripe.endpoints import add_settings_endpoints, retrieve_event
from devnet.stripe.errors import StripeError, invalid_request
from devnet.stripe.sandbox import Context, Sandbox
from devnet.stripe.store import JsonObject
from devnet.stripe.webhooks import Dispatcher

__all__ = ["DISPATCHER_KEY", "TRIGGERS", "add_control_routes"]

DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("dispatcher", Dispatcher)
MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise invalid_request(f"Control bodies are limited to {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise invalid_request("The body must be JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The body must be a JSON object.")
    return body


def _control(fn: Callable[[web.Request, Sandbox, dict[str, Any]], Awaitable[Any]]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        sb = request.app[SANDBOX_KEY]
        try:
            result = await fn(request, sb, await _body(request))
        except StripeError as exc:
            return json_response(exc.status, exc.body("sandbox"))
        return json_response(200, result)
    return handle


def _trigger_payment(sb: Sandbox, body: dict[str, Any], pm: str) -> JsonObject:
    params: dict[str, Any] = {"amount": str(body.get("amount", 500)), "currency": str(body.get("currency", "usd")),
                              "payment_method": pm, "confirm": "true", "payment_method_types": ["card"],
                              "metadata": {str(k): str(v) for k, v in dict(body.get("metadata") or {}).items()}}
    try:
        return payment_intents.create_payment_intent(sb, Context.automatic(), params)
    except StripeError as exc:
        if exc.status != 402:
            raise
        return dict(exc.extra["payment_intent"])


def _trigger(sb: Sandbox, event_type: str, body: dict[str, Any]) -> JsonObject:
    if event_type in ("payment_intent.succeeded", "charge.succeeded", "payment_intent.created"):
        return _trigger_payment(sb, body, "pm_card_visa")
    if event_type in ("payment_intent.payment_failed", "charge.failed"):
        return _trigger_payment(sb, body, "pm_card_chargeDeclined")
    if event_type == "payment_intent.requires_action":
        return _trigger_payment(sb, body, "pm_card_threeDSecure2Required")
    if event_type in ("charge.dispute.created", "charge.dispute.funds_withdrawn"):
        return _trigger_payment(sb, body, "pm_card_createDispute")
    if event_type in ("charge.refunded", "refund.created"):
        pi = _trigger_payment(sb, body, "pm_card_visa")
        return refunds.create_refund(sb, Context.automatic(), {"payment_intent": pi["id"]})
    if event_type in ("checkout.session.completed", "checkout.session.expired"):
        amount = str(body.get("amount", 500))
        session = checkout.create_session(sb, Context.automatic(), {
            "mode": "payment", "success_url": "http://127.0.0.1/success",
            "line_items": [{"quantity": "1", "price_data": {"currency": "usd", "unit_amount": amount,
                                                            "product_data": {"name": "Triggered"}}}]})
        if event_type.endswith("expired"):
            return checkout.expire_session(sb, Context.automatic(), session["id"])
        return checkout.pay_session(sb, session["id"], {"payment_method": "pm_card_visa"}, None)
    raise invalid_request(f"The sandbox cannot trigger {event_type[:80]!r}; it can trigger: {', '.join(TRIGGERS)}",
                          param="type")


TRIGGERS = ("payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
            "payment_intent.requires_action", "charge.succeeded", "charge.failed", "charge.refunded",
            "refund.created", "charge.dispute.created", "charge.dispute.funds_withdrawn",
            "checkout.session.completed", "checkout.session.expired")


async def trigger(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    event_type = str(body.get("type", ""))
    before = set(sb.store.events)
    obj = _trigger(sb, event_type, body)
    events = [e for e in sb.store.events.values() if e["id"] not in before]
    return {"object": obj, "events": [{"id": e["id"], "type": e["type"]} for e in events]}


async def resend(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    event = retrieve_event(sb, request.match_info["event_id"])
    request.app[DISPATCHER_KEY].enqueue(event, resend=True)
    return {"event": event["id"], "pending": len(request.app[DISPATCHER_KEY].pending())}


async def deliveries(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    dispatcher = request.app[DISPATCHER_KEY]
    try:
        limit = min(max(int(request.query.get("limit", "1000")), 1), sb.settings.max_delivery_attempts)
    except ValueError:
        raise invalid_request("limit must be an integer", param="limit") from None
    attempts = dispatcher.list_attempts(request.query.get("event"), request.query.get("endpoint"), limit)
    return {"attempts": attempts, "pending": dispatcher.pending()}


async def deliver_now(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    return await request.app[DISPATCHER_KEY].deliver_now()


async def close_dispute(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    return disputes.close_dispute(sb, request.match_info["dispute_id"], str(body.get("outcome", "")))


async def authenticate(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    outcome = body.get("outcome", "complete")
    if outcome not in ("complete", "fail"):
        raise invalid_request("outcome must be 'complete' or 'fail'", param="outcome")
    return payment_intents.authenticate(sb, request.match_info["pi_id"], outcome == "complete")


async def pay(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    card = body.get("card") or {}
    if "payment_method" in body:
        card = {"payment_method": body["payment_method"]}
    if not isinstance(card, dict):
        raise invalid_request("card must be an object", param="card")
    email = body.get("email")
    return checkout.pay_session(sb, request.match_info["session_id"], {k: str(v) for k, v in card.items()},
                                str(email) if email else None)


async def reset(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    sb.store.clear()
    request.app[DISPATCHER_KEY].reset()
    add_settings_endpoints(sb)
    return {"reset": True}


async def info(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    dispatcher = request.app[DISPATCHER_KEY]
    endpoints = [{**e, "secret": dispatcher.secret_of(e["id"])} for e in sb.store.of_kind("webhook_endpoint")]
    settings = sb.settings
    return {
        "api_base": sb.public_url, "js_url": f"{sb.public_url}/v3/", "webhook_endpoints": endpoints,
        "webhook_retry_scale": settings.webhook_retry_scale, "chaos_seed": settings.chaos_seed,
        "counts": {"objects": len(sb.store.objects), "events": len(sb.store.events),
                   "idempotency_keys": len(sb.store.idempotency), "pending_deliveries": len(dispatcher.pending())},
        "triggers": list(TRIGGERS),
    }


async def health(request: web.Request, sb: Sandbox, body: dict[str, Any]) -> Any:
    return {"status": "ok"}


def add_control_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Callable[[web.Request, Sandbox, dict[str, Any]], Awaitable[Any]]]] = [
        ("GET", "/_sandbox/health", health),
        ("GET", "/_sandbox/info", info),
        ("POST", "/_sandbox/reset", reset),
        ("POST", "/_sandbox/events/trigger", trigger),
        ("POST", "/_sandbox/events/{event_id}/resend", resend),
        ("GET", "/_sandbox/deliveries", deliveries),
        ("POST", "/_sandbox/deliveries/deliver_now", deliver_now),
        ("POST", "/_sandbox/disputes/{dispute_id}/close", close_dispute),
        ("POST", "/_sandbox/payment_intents/{pi_id}/authenticate", authenticate),
        ("POST", "/_sandbox/checkout/sessions/{session_id}/pay", pay),
    ]
    for method, path, fn in routes:
        app.router.add_route(method, path, _control(fn))
