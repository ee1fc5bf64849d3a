"""Webhook endpoints (``/v1/webhook_endpoints``; the secret is shown only on create, as by Stripe) and
the event API (``/v1/events``)."""

from __future__ import annotations

import hashlib
import re
import secrets

from devnet.stripe.errors import invalid_request
from devnet.stripe.forms import (
    TIMESTAMP_MAX,
    Params,
    check_known,
    read_bool,
    read_int,
    read_metadata,
    read_str,
    require_str,
)
from devnet.stripe.ids import now
from devnet.stripe.sandbox import Context, Sandbox, paginate
from devnet.stripe.store import JsonObject

__all__ = [
    "add_settings_endpoints",
    "create_endpoint",
    "delete_endpoint",
    "list_endpoints",
    "list_events",
    "retrieve_event",
    "update_endpoint",
]

_EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")
MAX_ENDPOINTS = 16  # Stripe allows 16 webhook endpoints per account


def _enabled_events(params: Params) -> list[str]:
    raw = params.get("enabled_events")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise invalid_request("Missing required param: enabled_events.", param="enabled_events")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not _EVENT_TYPE.match(item):
            raise invalid_request(f"Invalid enabled_events[{i}]: {str(item)[:80]!r} is not an event type",
                                  param=f"enabled_events[{i}]")
    return list(raw)


def _url(params: Params) -> str:
    url = require_str(params, "url")
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise invalid_request("Invalid URL: URL must be an http(s) URL of at most 2048 characters.", param="url")
    return url


def _endpoint(endpoint_id: str, url: str, events: list[str], description: str | None,
              metadata: dict[str, str], api_version: str | None) -> JsonObject:
    return {"id": endpoint_id, "object": "webhook_endpoint", "api_version": api_version, "application": None,
            "created": now(), "description": description, "enabled_events": events, "livemode": False,
            "metadata": metadata, "status": "enabled", "url": url}


def create_endpoint(sb: Sandbox, ctx: Context, params: Params) -> JsonObject:
    check_known(params, ("url", "enabled_events", "description", "metadata", "api_version", "connect"))
    url = _url(params)
    events = _enabled_events(params)
    if len(sb.store.of_kind("webhook_endpoint")) >= MAX_ENDPOINTS:
        raise invalid_request(f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints.",
                              executed=True)
    endpoint_id = "we_" + secrets.token_hex(12)
    secret = "whsec_" + secrets.token_hex(16)
    obj = _endpoint(endpoint_id, url, events, read_str(params, "description"), read_metadata(params),
                    read_str(params, "api_version"))
    sb.store.put(obj, private={"secret": secret})
    return {**obj, "secret": secret}


def add_settings_endpoints(sb: Sandbox) -> None:
    """The endpoints named in the settings, with deterministic ids and the settings' secret."""
    settings = sb.settings
    for url in settings.webhook_url:
        endpoint_id = "we_" + hashlib.sha256(f"{settings.seed}:{url}".encode()).hexdigest()[:24]
        existing = sb.store.find(endpoint_id)
        events = list(settings.webhook_events)
        if existing is None:
            sb.store.put(_endpoint(endpoint_id, url, events, "from STRIPE_SANDBOX_WEBHOOK_URL", {}, None),
                         private={"secret": settings.signing_secret})
        else:
            existing.update(enabled_events=events, status="enabled")
            sb.store.private[endpoint_id] = {"secret": settings.signing_secret}


def update_endpoint(sb: Sandbox, endpoint_id: str, params: Params) -> JsonObject:
    check_known(params, ("url", "enabled_events", "description", "metadata", "disabled"))
    endpoint = sb.store.get("webhook_endpoint", endpoint_id)
    if "url" in params:
        endpoint["url"] = _url(params)
    if "enabled_events" in params:
        endpoint["enabled_events"] = _enabled_events(params)
    if "description" in params:
        endpoint["description"] = read_str(params, "description") or None
    if "disabled" in params:
        endpoint["status"] = "disabled" if read_bool(params, "disabled") else "enabled"
    endpoint["metadata"] = read_metadata(params, endpoint["metadata"])
    sb.store.dirty = True
    return endpoint


def delete_endpoint(sb: Sandbox, endpoint_id: str) -> JsonObject:
    sb.store.get("webhook_endpoint", endpoint_id)
    sb.store.delete(endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before"))
    return paginate(sb.store.of_kind("webhook_endpoint"), params, "/v1/webhook_endpoints")


def retrieve_event(sb: Sandbox, event_id: str) -> JsonObject:
    event = sb.store.events.get(event_id)
    if event is None:
        raise invalid_request(f"No such event: '{event_id[:200]}'", param="id", code="resource_missing",
                              status=404, executed=True)
    return event


def list_events(sb: Sandbox, params: Params) -> JsonObject:
    check_known(params, ("limit", "starting_after", "ending_before", "type", "types", "created",
                         "delivery_success"))
    events = list(reversed(sb.store.events.values()))
    kind = read_str(params, "type")
    if kind:
        if kind.endswith(".*"):
            events = [e for e in events if e["type"].startswith(kind[:-1])]
        else:
            events = [e for e in events if e["type"] == kind]
    types = params.get("types")
    if isinstance(types, list):
        events = [e for e in events if e["type"] in types]
    created = params.get("created")
    if isinstance(created, dict):
        bounds = {op: read_int(created, op, maximum=TIMESTAMP_MAX) for op in ("gt", "gte", "lt", "lte")}
        events = [e for e in events if (bounds["gt"] is None or e["created"] > bounds["gt"])
                  and (bounds["gte"] is None or e["created"] >= bounds["gte"])
                  and (bounds["lt"] is None or e["created"] < bounds["lt"])
                  and (bounds["lte"] is None or e["created"] <= bounds["lte"])]
    elif created is not None:
        at = read_int(params, "created", maximum=TIMESTAMP_MAX)
        events = [e for e in events if e["created"] == at]
    return paginate(events, params, "/v1/events")


