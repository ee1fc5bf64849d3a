"""The sandbox core every resource module works on: the store, the request context, events, lists
and ``expand[]``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devnet.stripe.errors import invalid_request
from devnet.stripe.forms import Params, read_int, read_str
from devnet.stripe.ids import new_id, now
from devnet.stripe.settings import StripeSandboxSettings
from devnet.stripe.store import JsonObject, Limits, Store

__all__ = ["DEFAULT_API_VERSION", "EXPANDABLE", "Context", "Sandbox", "check_expandable", "list_object", "paginate"]

# The API version of the stripe library this sandbox was written against (stripe-python 16.1).
DEFAULT_API_VERSION = "2026-10-28.endive"
MAX_LIST_LIMIT = 100
# The fields Stripe lets expand[] replace, per resource (anything else is "cannot be expanded").
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"latest_charge", "payment_method", "customer", "review", "application",
                                 "on_behalf_of", "source"}),
    "charge": frozenset({"balance_transaction", "payment_intent", "customer", "review", "application",
                         "application_fee", "failure_balance_transaction", "on_behalf_of", "source_transfer",
                         "transfer", "refunds"}),
    "refund": frozenset({"balance_transaction", "charge", "payment_intent", "failure_balance_transaction",
                         "source_transfer_reversal", "transfer_reversal"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "checkout.session": frozenset({"payment_intent", "customer", "invoice", "payment_link", "setup_intent",
                                   "subscription", "line_items"}),
    "payment_method": frozenset({"customer"}),
    "balance_transaction": frozenset({"source"}),
    "event": frozenset(),
    "webhook_endpoint": frozenset(),
}


def _cannot_expand(field: str) -> Exception:
    return invalid_request(f"This property cannot be expanded ({field[:100]}).", param="expand", executed=True)


def check_expandable(kind: str, paths: list[str]) -> None:
    """Refuse, before anything runs, an expand[] whose first field ``kind`` cannot expand."""
    for path in paths:
        head = path.split(".", 1)[0]
        if head not in EXPANDABLE.get(kind, frozenset()):
            raise invalid_request(f"This property cannot be expanded ({head[:100]}).", param="expand")


@dataclass(frozen=True)
class Context:
    """Who asked: the request id and idempotency key end up in every event's ``request``."""

    request_id: str | None = None
    idempotency_key: str | None = None
    api_version: str = DEFAULT_API_VERSION
    publishable: bool = False

    @classmethod
    def automatic(cls) -> Context:
        """A change not caused by an API request (3-D Secure completed, a dispute closed, a sweep)."""
        return cls()


class Sandbox:
    def __init__(self, settings: StripeSandboxSettings) -> None:
        self.settings = settings
        self.store = Store(Limits(
            max_objects=settings.max_objects, max_events=settings.max_events,
            max_idempotency_keys=settings.max_idempotency_keys, idempotency_ttl_s=settings.idempotency_ttl_s,
        ))
        self.public_url = settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
        # set by the webhook dispatcher: how many endpoints take this event type; queues the deliveries
        self.count_endpoints: Callable[[str], int] = lambda _type: 0
        self.on_event: Callable[[JsonObject], None] = lambda _event: None

    def emit(self, event_type: str, obj: JsonObject, ctx: Context,
             previous: dict[str, Any] | None = None) -> JsonObject:
        """Record the event Stripe sends for a change, with a snapshot of the object as it is now."""
        data: JsonObject = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        event: JsonObject = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": ctx.api_version,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": self.count_endpoints(event_type),
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
            "type": event_type,
        }
        self.store.add_event(event)
        self.on_event(event)
        return event

    # -- expand[] -----------------------------------------------------------------------------

    def expand(self, obj: JsonObject, paths: list[str]) -> JsonObject:
        """A copy of ``obj`` with the named id fields replaced by their objects (``a.b`` nests)."""
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand_path(result, path.split("."), path)
        return result

    def _expand_path(self, node: Any, parts: list[str], path: str) -> None:
        if not parts or node is None:
            return
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") == "list" and head == "data":
            for item in node.get("data", []):
                self._expand_path(item, rest, path)
            return
        if not isinstance(node, dict) or head not in EXPANDABLE.get(str(node.get("object")), frozenset()):
            raise _cannot_expand(head)
        if head == "line_items" and node["object"] == "checkout.session":
            items = self.store.private.get(node["id"], {}).get("line_items", [])
            node[head] = list_object(f"/v1/checkout/sessions/{node['id']}/line_items", copy.deepcopy(items))
        value = node.get(head)
        if isinstance(value, str):
            target = self.store.find(value)
            if target is None:
                raise _cannot_expand(head)
            node[head] = value = copy.deepcopy(target)
        self._expand_path(value, rest, path)


def list_object(url: str, data: list[JsonObject], has_more: bool = False) -> JsonObject:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(items: list[JsonObject], params: Params, url: str) -> JsonObject:
    """Stripe's cursor pagination over ``items`` (newest first): ``limit``, ``starting_after``,
    ``ending_before``, and ``has_more``."""
    limit = read_int(params, "limit", minimum=1, maximum=MAX_LIST_LIMIT) or 10
    after = read_str(params, "starting_after")
    before = read_str(params, "ending_before")
    ids = [item["id"] for item in items]
    if after is not None:
        if after not in ids:
            raise invalid_request(f"No such object: '{after[:200]}'", param="starting_after",
                                  code="resource_missing", status=404)
        start = ids.index(after) + 1
        window = items[start:start + limit]
        return list_object(url, window, start + limit < len(items))
    if before is not None:
        if before not in ids:
            raise invalid_request(f"No such object: '{before[:200]}'", param="ending_before",
                                  code="resource_missing", status=404)
        end = ids.index(before)
        return list_object(url, items[max(0, end - limit):end], end - limit > 0)
    return list_object(url, items[:limit], len(items) > limit)
