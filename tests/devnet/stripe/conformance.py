"""Checks an object the sandbox returned against Stripe's own example of that resource
(fixtures/stripe_examples.json, trimmed from Stripe's fixtures3.json) and, second, against the field
annotations of the installed ``stripe`` package's resource class."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import stripe

__all__ = ["EXAMPLES", "conformance_problems"]

EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "stripe_examples.json").read_text())["resources"]
CLASSES: dict[str, type] = {
    "payment_method": stripe.PaymentMethod, "payment_intent": stripe.PaymentIntent, "charge": stripe.Charge,
    "refund": stripe.Refund, "dispute": stripe.Dispute, "checkout.session": stripe.checkout.Session,
    "event": stripe.Event, "webhook_endpoint": stripe.WebhookEndpoint,
    "balance_transaction": stripe.BalanceTransaction,
}
FREE_FORM = {"metadata", "previous_attributes", "fee_details"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {str: "string", dict: "object", list: "array"}
    return names.get(type(value), type(value).__name__)


def _id_prefix(object_id: str) -> str:
    return "cs_test_" if object_id.startswith("cs_test_") else object_id.split("_", 1)[0] + "_"


def _annotations(cls: Any) -> dict[str, Any] | None:
    if isinstance(cls, type) and issubclass(cls, stripe.StripeObject):
        merged: dict[str, Any] = {}
        for base in reversed(cls.__mro__):
            merged.update(getattr(base, "__annotations__", {}))
        return merged
    return None


def _nested_class(hint: Any) -> Any:
    for arg in typing.get_args(hint) or (hint,):
        if _annotations(arg) is not None:
            return arg
        if typing.get_origin(arg) is list:
            inner = typing.get_args(arg)
            if inner and _annotations(inner[0]) is not None:
                return inner[0]
    return None


def _nullable(hint: Any) -> bool:
    if hint is None:
        return False
    return type(None) in typing.get_args(hint) or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                                                   and type(None) in typing.get_args(hint))


def _compare(value: Any, example: Any, hint: Any, path: str, problems: list[str]) -> None:
    if value is None:
        if example is not None and not _nullable(hint):
            problems.append(f"{path}: null, but Stripe's example is a {_json_type(example)} and the class is not "
                            f"Optional ({hint})")
        return
    if example is None:
        return
    if _json_type(value) != _json_type(example):
        problems.append(f"{path}: {_json_type(value)}, Stripe's example has a {_json_type(example)}")
        return
    leaf = path.rsplit(".", 1)[-1]
    if isinstance(value, dict) and example and leaf not in FREE_FORM:
        _compare_fields(value, example, _nested_class(hint), path, problems, exact=False)
    if isinstance(value, list) and value and example and isinstance(example[0], dict):
        for i, item in enumerate(value[:3]):
            _compare(item, example[0], _nested_class(hint), f"{path}[{i}]", problems)


def _compare_fields(obj: dict[str, Any], example: dict[str, Any], cls: Any, path: str, problems: list[str],
                    *, exact: bool) -> None:
    fields = _annotations(cls) if cls is not None else None
    missing = sorted(set(example) - set(obj))
    if missing:
        problems.append(f"{path}: missing {missing}")
    extra = sorted(set(obj) - set(example))
    if extra and (exact or fields is None):
        unknown = [k for k in extra if fields is None or k not in fields]
        if unknown:
            problems.append(f"{path}: keys not in Stripe's example or class: {unknown}")
    elif extra and fields is not None:
        unknown = [k for k in extra if k not in fields]
        if unknown:
            problems.append(f"{path}: keys not in Stripe's example nor in {cls.__name__}: {unknown}")
    for key, value in obj.items():
        hint = fields.get(key) if fields else None
        if key in example:
            _compare(value, example[key], hint, f"{path}.{key}", problems)
        elif fields is not None and key in fields and value is None and not _nullable(hint):
            problems.append(f"{path}.{key}: null but {cls.__name__}.{key} is not Optional")


def conformance_problems(obj: dict[str, Any]) -> list[str]:
    """Everything in ``obj`` (a plain JSON object) that differs in shape from Stripe's example."""
    original = obj
    kind = obj.get("object")
    if kind not in EXAMPLES:
        return [f"no example for object {kind!r}"]
    example, cls = EXAMPLES[kind], CLASSES[kind]
    problems: list[str] = []
    if _id_prefix(str(obj.get("id", ""))) != _id_prefix(example["id"]):
        problems.append(f"{kind}.id: {obj.get('id')!r} does not have the prefix of {example['id']!r}")
    if kind == "event":  # data.object is checked against its own resource's example below
        if not isinstance(obj.get("data", {}).get("object"), dict):
            problems.append("event.data.object: not an object")
        obj = {**obj, "data": {k: v for k, v in obj.get("data", {}).items() if k != "object"}}
        example = {**example, "data": {k: v for k, v in example["data"].items() if k != "object"}}
    extra = set(obj) - set(example)
    allowed_extra = {"secret"} if kind == "webhook_endpoint" else set()
    _compare_fields({k: v for k, v in obj.items() if k not in extra - allowed_extra}, example, cls, kind,
                    problems, exact=True)
    for key in sorted(extra - allowed_extra):
        problems.append(f"{kind}: key {key!r} is not in Stripe's example")
    fields = _annotations(cls) or {}
    for key in obj:
        if key not in fields and key not in example:
            problems.append(f"{kind}.{key}: not a field of {cls.__name__}")
    if kind == "event":
        inner = original.get("data", {}).get("object", {})
        if inner.get("object") in EXAMPLES:
            problems += [f"event.data.{p}" for p in conformance_problems(inner)]
    return problems
