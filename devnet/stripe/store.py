"""The sandbox's memory: API objects by id, events newest last, idempotency records, with limits.

Everything is bounded: past a limit the oldest entries go first (an evicted object then answers 404,
as a purged one would). The whole store round-trips through JSON for the optional state file.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet.stripe.errors import not_found

__all__ = ["IdempotencyRecord", "Limits", "Store", "write_json_atomically"]

JsonObject = dict[str, Any]
STATE_VERSION = 1
PINNED_KINDS = frozenset({"webhook_endpoint"})  # at most 16 (+ the settings' ones), so eviction always ends


@dataclass(frozen=True)
class Limits:
    max_objects: int = 50_000
    max_events: int = 20_000
    max_idempotency_keys: int = 20_000
    idempotency_ttl_s: float = 86_400.0


@dataclass
class IdempotencyRecord:
    method: str
    path: str
    fingerprint: str
    status: int
    body: str
    request_id: str
    created: float

    def to_json(self) -> JsonObject:
        return dict(vars(self))


_KIND_NAMES = {  # how "No such ..." messages name a resource
    "payment_intent": "payment_intent", "payment_method": "PaymentMethod", "charge": "charge",
    "refund": "refund", "dispute": "dispute", "checkout.session": "checkout.session",
    "event": "event", "webhook_endpoint": "webhook endpoint", "balance_transaction": "balance transaction",
}


class Store:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.objects: OrderedDict[str, JsonObject] = OrderedDict()
        self.by_kind: dict[str, dict[str, JsonObject]] = {}  # insertion-ordered per kind, for lists
        self.private: dict[str, JsonObject] = {}  # sandbox-only facts about an object (a card's behaviour)
        self.events: OrderedDict[str, JsonObject] = OrderedDict()
        self.idempotency: OrderedDict[str, IdempotencyRecord] = OrderedDict()
        self.dirty = False

    # -- objects ------------------------------------------------------------------------------

    def put(self, obj: JsonObject, private: JsonObject | None = None) -> JsonObject:
        object_id = obj["id"]
        self.objects[object_id] = obj
        self.by_kind.setdefault(obj["object"], {})[object_id] = obj
        if private is not None:
            self.private[object_id] = private
        while len(self.objects) > self.limits.max_objects:
            old_id, old = self.objects.popitem(last=False)
            if old["object"] in PINNED_KINDS:  # configuration, not traffic: never evicted
                self.objects[old_id] = old
                continue
            self.by_kind.get(old["object"], {}).pop(old_id, None)
            self.private.pop(old_id, None)
        self.dirty = True
        return obj

    def delete(self, object_id: str) -> None:
        old = self.objects.pop(object_id, None)
        if old is not None:
            self.by_kind.get(old["object"], {}).pop(object_id, None)
        self.private.pop(object_id, None)
        self.dirty = True

    def find(self, object_id: str) -> JsonObject | None:
        return self.objects.get(object_id)

    def get(self, kind: str, object_id: str, param: str = "id") -> JsonObject:
        obj = self.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            raise not_found(_KIND_NAMES.get(kind, kind), object_id, param)
        return obj

    def of_kind(self, kind: str) -> list[JsonObject]:
        """Objects of one kind, newest first (insertion order reversed)."""
        return list(reversed(self.by_kind.get(kind, {}).values()))

    def snapshot(self, obj: JsonObject) -> JsonObject:
        return copy.deepcopy(obj)

    # -- events -------------------------------------------------------------------------------

    def add_event(self, event: JsonObject) -> None:
        self.events[event["id"]] = event
        while len(self.events) > self.limits.max_events:
            self.events.popitem(last=False)
        self.dirty = True

    # -- idempotency --------------------------------------------------------------------------

    def idempotent(self, key: str) -> IdempotencyRecord | None:
        self._expire_keys()
        return self.idempotency.get(key)

    def remember(self, key: str, record: IdempotencyRecord) -> None:
        self.idempotency[key] = record
        self.idempotency.move_to_end(key)
        while len(self.idempotency) > self.limits.max_idempotency_keys:
            self.idempotency.popitem(last=False)
        self.dirty = True

    def _expire_keys(self) -> None:
        horizon = time.time() - self.limits.idempotency_ttl_s
        while self.idempotency:
            first = next(iter(self.idempotency.values()))
            if first.created >= horizon:
                break
            self.idempotency.popitem(last=False)

    # -- persistence --------------------------------------------------------------------------

    def clear(self) -> None:
        self.objects.clear()
        self.by_kind.clear()
        self.private.clear()
        self.events.clear()
        self.idempotency.clear()
        self.dirty = True

    def to_state(self) -> JsonObject:
        return {
            "version": STATE_VERSION,
            "objects": list(self.objects.values()),
            "private": self.private,
            "events": list(self.events.values()),
            "idempotency": {k: r.to_json() for k, r in self.idempotency.items()},
        }

    def load_state(self, state: JsonObject) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state file version {state.get('version')!r}")
        self.clear()
        for obj in state["objects"]:
            self.objects[obj["id"]] = obj
            self.by_kind.setdefault(obj["object"], {})[obj["id"]] = obj
        self.private.update(state["private"])
        for event in state["events"]:
            self.events[event["id"]] = event
        for key, record in state["idempotency"].items():
            self.idempotency[key] = IdempotencyRecord(**record)
        self.dirty = False


def write_json_atomically(path: Path, data: JsonObject) -> None:
    """Write to a temporary file, fsync, rename: a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh state directory (make up's first start)
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
