"""Stripe-looking identifiers (``pi_`` + 24 base62 characters) and the sandbox clock."""

from __future__ import annotations

import secrets
import string
import time

__all__ = ["client_secret", "new_id", "now"]

_ALPHABET = string.digits + string.ascii_letters


def _token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    """``new_id("pi")`` -> ``pi_3Qx…``; Checkout Session ids are longer (``cs_test_`` + 58)."""
    return f"{prefix}_{_token(length)}"


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{_token(25)}"


def now() -> int:
    """Unix seconds, as every ``created`` field."""
    return int(time.time())
