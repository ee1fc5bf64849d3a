"""Argument checks shared by both ledger backends: bounded ids, keys, amounts and references.

The ledger is called by our own services, so a bad argument is a bug upstream; it still gets a clear
400 problem rather than a half-written row or an opaque database error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.lib.errors import ClientError

__all__ = [
    "MAX_AMOUNT",
    "MAX_HOLD_TIMEOUT_S",
    "MAX_ID_CHARS",
    "MAX_REFERENCE_BYTES",
    "MAX_SETTLE_BATCH",
    "RESERVED_KEY_PREFIXES",
    "LedgerInputError",
    "check_amount",
    "check_id",
    "check_key",
    "check_timeout",
    "encode_reference",
]

MAX_ID_CHARS = 200
MAX_AMOUNT = 1_000_000_000
MAX_HOLD_TIMEOUT_S = 7 * 24 * 3600.0
MAX_REFERENCE_BYTES = 4096
MAX_SETTLE_BATCH = 10_000
# The ledger derives these keys itself from the generation id; a caller key may not imitate them.
RESERVED_KEY_PREFIXES = ("hold:", "post:", "void:")


class LedgerInputError(ClientError):
    code = "invalid_ledger_request"


def check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise LedgerInputError(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_CHARS:
        raise LedgerInputError(f"{name} is longer than {MAX_ID_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise LedgerInputError(f"{name} contains control characters")
    return value


def check_key(value: object) -> str:
    key = check_id("key", value)
    if key.startswith(RESERVED_KEY_PREFIXES):
        raise LedgerInputError(f"key may not start with {', '.join(RESERVED_KEY_PREFIXES)} (reserved for holds)")
    return key


def check_amount(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerInputError(f"{name} must be an integer")
    if not 1 <= value <= MAX_AMOUNT:
        raise LedgerInputError(f"{name} must be between 1 and {MAX_AMOUNT:,}")
    return value


def check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LedgerInputError("timeout_s must be a finite number")
    if not 0 < value <= MAX_HOLD_TIMEOUT_S:
        raise LedgerInputError(f"timeout_s must be > 0 and at most {MAX_HOLD_TIMEOUT_S:g}")
    return float(value)


def encode_reference(reference: dict[str, Any] | None) -> str:
    """The reference as canonical JSON (sorted keys), bounded in size."""
    if reference is None:
        return "{}"
    if not isinstance(reference, dict):
        raise LedgerInputError("reference must be a JSON object")
    try:
        text = json.dumps(reference, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LedgerInputError(f"reference is not JSON: {exc}") from None
    if len(text.encode()) > MAX_REFERENCE_BYTES:
        raise LedgerInputError(f"reference is larger than {MAX_REFERENCE_BYTES} bytes as JSON")
    return text
