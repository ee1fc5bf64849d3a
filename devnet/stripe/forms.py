"""Stripe's form encoding: ``metadata[k]=v``, ``expand[0]=x`` / ``expand[]=x``,
``line_items[0][price_data][unit_amount]=500`` decoded into nested dicts and lists, and typed readers
that answer Stripe's own validation errors (``Missing required param``, ``Invalid integer``,
``Received unknown parameter``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from devnet.stripe.errors import StripeError, invalid_request

__all__ = [
    "TIMESTAMP_MAX",
    "Params",
    "check_known",
    "decode_form",
    "expand_paths",
    "read_bool",
    "read_int",
    "read_metadata",
    "read_str",
    "require_str",
]

Params = dict[str, Any]
MAX_FIELDS = 1000
MAX_DEPTH = 8
MAX_KEY_CHARS = 500
MAX_VALUE_CHARS = 5000
TIMESTAMP_MAX = 2**40  # unix seconds: far beyond any date, well below what JSON numbers hold exactly
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FREE_FORM = frozenset({"metadata"})  # their digit keys stay dict keys


def _split_key(key: str) -> list[str]:
    match = _KEY.match(key)
    if match is None or len(key) > MAX_KEY_CHARS:
        raise invalid_request(f"Invalid parameter name: {key[:100]}", param=key[:100])
    parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    if len(parts) > MAX_DEPTH:
        raise invalid_request(f"Parameter nested too deeply: {key[:100]}", param=key[:100])
    return parts


def _insert(root: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    node: dict[str, Any] = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":  # "expand[]": append at the next free index
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            if isinstance(node.get(part), dict):
                raise invalid_request(f"Invalid value for {key[:100]}: it is an object elsewhere", param=key[:100])
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise invalid_request(f"Invalid value for {key[:100]}: it is a scalar elsewhere", param=key[:100])
        node = child


def _listify(value: Any, parent: str = "") -> Any:
    if not isinstance(value, dict):
        return value
    if parent in _FREE_FORM:
        return {k: _listify(v) for k, v in value.items()}
    converted = {k: _listify(v, k) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_form(body: str) -> Params:
    """Decode a form body or query string into nested params; bad shapes are 400s like Stripe's."""
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise invalid_request(f"Too many parameters (at most {MAX_FIELDS})") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        if len(value) > MAX_VALUE_CHARS:
            raise invalid_request(f"Invalid {key[:100]}: must be at most {MAX_VALUE_CHARS} characters",
                                  param=key[:100])
        _insert(root, _split_key(key), value, key)
    result: Params = _listify(root)
    return result


def check_known(params: Params, allowed: Iterable[str]) -> None:
    allowed_set = set(allowed) | {"expand"}
    for key in params:
        if key not in allowed_set:
            raise invalid_request(f"Received unknown parameter: {key[:100]}", param=key[:100])


def read_str(params: Params, name: str, default: str | None = None, *, max_chars: int = 5000) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid_request(f"Invalid string: {name} must be a string, not an object", param=name)
    if len(value) > max_chars:
        raise invalid_request(f"Invalid {name}: must be at most {max_chars} characters", param=name)
    return value


def require_str(params: Params, name: str) -> str:
    value = read_str(params, name)
    if not value:
        raise invalid_request(f"Missing required param: {name}.", param=name)
    return value


def read_int(params: Params, name: str, *, required: bool = False, minimum: int | None = None,
             maximum: int = 99_999_999) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise invalid_request(f"Missing required param: {name}.", param=name)
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d{1,12}", raw):
        raise invalid_request(f"Invalid integer: {str(raw)[:100]}", param=name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise invalid_request(f"This value must be greater than or equal to {minimum}.", param=name)
    if value > maximum and name == "amount":
        raise invalid_request(f"Amount must be no more than {maximum}", param=name, code="amount_too_large")
    if value > maximum:
        raise invalid_request(f"This value must be less than or equal to {maximum}.", param=name)
    return value


def read_bool(params: Params, name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise invalid_request(f"Invalid boolean: {str(raw)[:100]}", param=name)


def read_metadata(params: Params, current: dict[str, str] | None = None) -> dict[str, str]:
    """Stripe's metadata rules: 50 keys, key 40 chars, value 500 chars; ``""`` unsets a key (or all)."""
    merged = dict(current or {})
    raw = params.get("metadata")
    if raw is None:
        return merged
    if raw == "":
        return {}
    if not isinstance(raw, dict):
        raise invalid_request("Invalid object", param="metadata")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise invalid_request(f"Invalid value for metadata[{key[:40]}]: must be a string", param="metadata")
        if len(key) > 40:
            raise invalid_request("Metadata keys can have up to 40 characters.", param=f"metadata[{key[:40]}]")
        if len(value) > 500:
            raise invalid_request("Metadata values can have up to 500 characters.", param=f"metadata[{key}]")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise invalid_request("Metadata can have up to 50 keys.", param="metadata")
    return merged


def expand_paths(params: Params) -> list[str]:
    raw = params.get("expand", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise invalid_request("Invalid array", param="expand")
    if len(raw) > 20:
        raise StripeError(400, "invalid_request_error", "You may expand at most 20 fields.", param="expand",
                          store_idempotent=False)
    return list(raw)
