"""The ``/v1`` HTTP surface: Bearer auth, form decoding, Stripe idempotency, ``expand[]``, errors.

Handlers are synchronous functions over the in-memory sandbox, so one request runs start to finish
without interleaving: two requests with one idempotency key can never both execute.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from common.logging import get_logger
from devnet.stripe import charges, checkout, disputes, endpoints, payment_intents, payment_methods, refunds
from devnet.stripe.errors import StripeError, invalid_request
from devnet.stripe.forms import Params, check_known, decode_form, expand_paths
from devnet.stripe.ids import new_id
from devnet.stripe.sandbox import DEFAULT_API_VERSION, Context, Sandbox, check_expandable
from devnet.stripe.store import IdempotencyRecord, JsonObject

__all__ = ["SANDBOX_KEY", "add_api_routes", "json_response"]

log = get_logger("devnet.stripe.api")
SANDBOX_KEY: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)
Operation = Callable[..., JsonObject]
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")
MAX_IDEMPOTENCY_KEY_CHARS = 255
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, Stripe-Version",
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS"}


def _dumps(body: Any) -> str:
    """Compact JSON: every answer may be kept for 24 h as an idempotent replay, so bytes count."""
    return json.dumps(body, separators=(",", ":"))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=_dumps(body), content_type="application/json",
                        headers={**CORS, **(headers or {})})


def _api_key(request: web.Request, sb: Sandbox, publishable_ok: bool) -> tuple[str, bool]:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(key).decode().partition(":")[0]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    key = key.strip()
    if not key:
        raise StripeError(401, "invalid_request_error", "You did not provide an API key. You need to provide your "
                          "API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                          "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can "
                          "help at https://support.stripe.com/.", store_idempotent=False)
    masked = f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}" if len(key) > 12 else key[:4] + "****"
    if key.startswith("pk_test_") and len(key) > 8:
        if not publishable_ok:
            raise StripeError(401, "invalid_request_error", "This API call cannot be made with a publishable API "
                              "key. Please use a secret API key. You can find a list of your API keys at "
                              "https://dashboard.stripe.com/account/apikeys.", store_idempotent=False)
        return key, True
    allowed = sb.settings.api_keys
    if not key.startswith("sk_test_") or len(key) <= 8 or (allowed and key not in allowed):
        raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {masked}",
                          code="api_key_invalid" if key.startswith("sk_live_") else None, store_idempotent=False)
    return key, False


async def _params(request: web.Request) -> Params:
    if request.method == "POST":
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if raw and "json" in ctype:
            raise invalid_request("Invalid request: the v1 API takes application/x-www-form-urlencoded bodies.")
        text = raw.decode("utf-8", errors="replace")
        return decode_form(text) if text else {}
    return decode_form(request.query_string)


async def _execute(request: web.Request, operation: Operation, publishable_ok: bool) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    request_id = new_id("req", 14)
    headers = {"Request-Id": request_id, "Stripe-Version": DEFAULT_API_VERSION}
    idem_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    try:
        _, publishable = _api_key(request, sb, publishable_ok)
        version = request.headers.get("Stripe-Version")
        if version is not None:
            if not _VERSION.match(version):
                raise invalid_request(f"Invalid Stripe API version: {version[:40]}", code="api_version_invalid")
            headers["Stripe-Version"] = version
        params = await _params(request)
        if idem_key is not None:
            if len(idem_key) > MAX_IDEMPOTENCY_KEY_CHARS:
                raise invalid_request(f"Invalid Idempotency-Key: must be at most {MAX_IDEMPOTENCY_KEY_CHARS} "
                                      "characters.")
            headers["Idempotency-Key"] = idem_key
            replay = _replay(sb, idem_key, request, params, headers)
            if replay is not None:
                return replay
        ctx = Context(request_id=request_id, idempotency_key=idem_key, publishable=publishable)
        paths = expand_paths(params)
        if paths and request.method == "POST":
            check_expandable(_resource_of(request.path), paths)
        call_params = {k: v for k, v in params.items() if k != "expand"}
        result = operation(sb, ctx, call_params, **request.match_info)
        status, body = 200, sb.expand(result, paths) if paths else result
        store = True
    except StripeError as exc:
        status, body, store = exc.status, exc.body(request_id), exc.store_idempotent
        headers.update(exc.headers)
        if status == 402 or exc.code == "idempotency_key_in_use":
            headers["Stripe-Should-Retry"] = "false"
    text = _dumps(body)
    if idem_key is not None and store:
        sb.store.remember(idem_key, IdempotencyRecord(
            request.method, request.path, _fingerprint(params), status, text, request_id, time.time()))
    log.debug("api_request", method=request.method, path=request.path[:200], status=status, request_id=request_id)
    return web.Response(status=status, text=text, content_type="application/json", headers={**CORS, **headers})


_RESOURCES = {"payment_intents": "payment_intent", "payment_methods": "payment_method", "charges": "charge",
              "refunds": "refund", "disputes": "dispute", "checkout": "checkout.session", "events": "event",
              "webhook_endpoints": "webhook_endpoint", "balance_transactions": "balance_transaction"}


def _resource_of(path: str) -> str:
    """The resource a POST answers: ``/v1/payment_intents/pi_x/confirm`` -> ``payment_intent``."""
    parts = path.split("/")
    return _RESOURCES.get(parts[2] if len(parts) > 2 else "", "")


def _fingerprint(params: Params) -> str:
    """What "the same parameters" means: the decoded parameters, order-insensitive."""
    return json.dumps(params, sort_keys=True)


def _replay(sb: Sandbox, key: str, request: web.Request, params: Params,
            headers: dict[str, str]) -> web.Response | None:
    record = sb.store.idempotent(key)
    if record is None:
        return None
    if (record.method, record.path) != (request.method, request.path):
        raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be used for the same "
                          f"endpoint they were first used for ('{record.method} {record.path}' vs "
                          f"'{request.method} {request.path}'). Try using a key other than '{key}' if you meant to "
                          "execute a different request.", store_idempotent=False)
    if record.fingerprint != _fingerprint(params):
        raise StripeError(400, "idempotency_error", "Keys for idempotent requests can only be used with the same "
                          f"parameters they were first used with. Try using a key other than '{key}' if you meant "
                          "to execute a different request.", store_idempotent=False)
    replay_headers = {**headers, "Idempotent-Replayed": "true", "Original-Request": record.request_id}
    return web.Response(status=record.status, text=record.body, content_type="application/json",
                        headers={**CORS, **replay_headers})


def _no_params(fn: Callable[..., JsonObject]) -> Operation:
    def operation(sb: Sandbox, ctx: Context, params: Params, **ids: str) -> JsonObject:
        check_known(params, ())
        return fn(sb, *ids.values())
    return operation


def _ids_only(fn: Callable[..., JsonObject]) -> Operation:
    def operation(sb: Sandbox, ctx: Context, params: Params, **ids: str) -> JsonObject:
        return fn(sb, *ids.values(), params)
    return operation


def _with_ctx(fn: Callable[..., JsonObject]) -> Operation:
    def operation(sb: Sandbox, ctx: Context, params: Params, **ids: str) -> JsonObject:
        return fn(sb, ctx, *ids.values(), params)
    return operation


def _expire(sb: Sandbox, ctx: Context, params: Params, session_id: str) -> JsonObject:
    check_known(params, ())
    return checkout.expire_session(sb, ctx, session_id)


def _close_dispute(sb: Sandbox, ctx: Context, params: Params, dispute_id: str) -> JsonObject:
    check_known(params, ())
    return disputes.close_dispute(sb, dispute_id, "lost", ctx)


def _list(fn: Callable[[Sandbox, Params], JsonObject]) -> Operation:
    def operation(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
        return fn(sb, params)
    return operation


# (method, path, operation, allowed with a publishable key)
ROUTES: list[tuple[str, str, Operation, bool]] = [
    ("POST", "/v1/payment_methods", _with_ctx(payment_methods.create_payment_method), True),
    ("GET", "/v1/payment_methods/{pm_id}", _no_params(payment_methods.retrieve_payment_method), False),
    ("POST", "/v1/payment_intents", _with_ctx(payment_intents.create_payment_intent), False),
    ("GET", "/v1/payment_intents", _list(payment_intents.list_payment_intents), False),
    ("GET", "/v1/payment_intents/{pi_id}", _with_ctx(payment_intents.retrieve_payment_intent), True),
    ("POST", "/v1/payment_intents/{pi_id}", _with_ctx(payment_intents.update_payment_intent), False),
    ("POST", "/v1/payment_intents/{pi_id}/confirm", _with_ctx(payment_intents.confirm_payment_intent), True),
    ("POST", "/v1/payment_intents/{pi_id}/cancel", _with_ctx(payment_intents.cancel_payment_intent), False),
    ("GET", "/v1/charges", _list(charges.list_charges), False),
    ("GET", "/v1/charges/{charge_id}", _no_params(lambda sb, i: sb.store.get("charge", i)), False),
    ("GET", "/v1/charges/{charge_id}/refunds", _ids_only(lambda sb, i, p: refunds.list_refunds(sb, p, i)), False),
    ("POST", "/v1/refunds", _with_ctx(refunds.create_refund), False),
    ("GET", "/v1/refunds", _list(refunds.list_refunds), False),
    ("GET", "/v1/refunds/{refund_id}", _no_params(lambda sb, i: sb.store.get("refund", i)), False),
    ("POST", "/v1/refunds/{refund_id}", _ids_only(refunds.update_refund), False),
    ("GET", "/v1/disputes", _list(disputes.list_disputes), False),
    ("GET", "/v1/disputes/{dispute_id}", _no_params(lambda sb, i: sb.store.get("dispute", i)), False),
    ("POST", "/v1/disputes/{dispute_id}", _ids_only(disputes.update_dispute), False),
    ("POST", "/v1/disputes/{dispute_id}/close", _close_dispute, False),
    ("POST", "/v1/checkout/sessions", _with_ctx(checkout.create_session), False),
    ("GET", "/v1/checkout/sessions", _list(checkout.list_sessions), False),
    ("GET", "/v1/checkout/sessions/{session_id}",
     _no_params(lambda sb, i: sb.store.get("checkout.session", i, "session")), False),
    ("POST", "/v1/checkout/sessions/{session_id}/expire", _expire, False),
    ("GET", "/v1/checkout/sessions/{session_id}/line_items", _ids_only(checkout.list_line_items), False),
    ("GET", "/v1/events", _list(endpoints.list_events), False),
    ("GET", "/v1/events/{event_id}", _no_params(endpoints.retrieve_event), False),
    ("POST", "/v1/webhook_endpoints", _with_ctx(endpoints.create_endpoint), False),
    ("GET", "/v1/webhook_endpoints", _list(endpoints.list_endpoints), False),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}",
     _no_params(lambda sb, i: sb.store.get("webhook_endpoint", i)), False),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}", _ids_only(endpoints.update_endpoint), False),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}", _no_params(endpoints.delete_endpoint), False),
    ("GET", "/v1/balance_transactions/{txn_id}",
     _no_params(lambda sb, i: sb.store.get("balance_transaction", i)), False),
]


def _handler(operation: Operation, publishable_ok: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        return await _execute(request, operation, publishable_ok)
    return handle


async def _unrecognized(request: web.Request) -> web.Response:
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS)
    message = (f"Unrecognized request URL ({request.method}: {request.path[:200]}). Please see "
               "https://stripe.com/docs or we can help at https://support.stripe.com/.")
    return json_response(404, {"error": {"type": "invalid_request_error", "message": message}})


def add_api_routes(app: web.Application) -> None:
    for method, path, operation, publishable_ok in ROUTES:
        app.router.add_route(method, path, _handler(operation, publishable_ok))
    app.router.add_route("*", "/v1/{tail:.*}", _unrecognized)
