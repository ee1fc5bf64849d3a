"""Cardano address bytes <-> text (bech32 for Shelley, base58 for Byron) and credential access."""

from __future__ import annotations

from functools import lru_cache

import base58

from common import bech32

__all__ = [
    "AddressError",
    "address_from_text",
    "address_network",
    "address_to_text",
    "enterprise_address",
    "payment_credential",
]

_BYRON = 8
MAX_BECH32_LENGTH = 1023
_REWARD_TYPES = (14, 15)


class AddressError(ValueError):
    """An address that cannot be parsed."""


bech32_encode = bech32.encode


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """``(hrp, data)``, or None when ``text`` is not lower-case bech32 (addresses here are lower case)."""
    if text.lower() != text:
        return None
    try:
        return bech32.decode(text, max_chars=MAX_BECH32_LENGTH)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def address_to_text(raw: bytes) -> str:
    """Bech32 (``addr``/``addr_test``/``stake``/``stake_test``) or base58 for Byron addresses."""
    if not raw:
        raise AddressError("empty address")
    kind = raw[0] >> 4
    if kind == _BYRON:
        return base58.b58encode(raw).decode("ascii")
    prefix = "stake" if kind in _REWARD_TYPES else "addr"
    hrp = prefix if (raw[0] & 0x0F) == 1 else prefix + "_test"
    return bech32_encode(hrp, raw)


@lru_cache(maxsize=65536)
def address_from_text(text: str) -> bytes:
    """Parse a bech32, base58 (Byron) or hex address into its bytes."""
    text = text.strip()
    if text.startswith(("addr", "stake")):
        decoded = bech32_decode(text)
        if decoded is None or not decoded[1]:
            raise AddressError(f"invalid bech32 address: {text[:120]!r}")
        raw = decoded[1]
    else:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            try:
                raw = base58.b58decode(text)
            except ValueError as exc:
                raise AddressError(f"not an address: {text[:120]!r}") from exc
    if len(raw) < 29 and raw[:1] and (raw[0] >> 4) != _BYRON:
        raise AddressError(f"address too short: {text[:120]!r}")
    return raw


def address_network(raw: bytes) -> int | None:
    """Network id of a Shelley address (0 testnet, 1 mainnet); None for Byron addresses."""
    if not raw or (raw[0] >> 4) == _BYRON:
        return None
    return raw[0] & 0x0F


def payment_credential(raw: bytes) -> tuple[str, str] | None:
    """``("key"|"script", hash hex)`` of a Shelley payment address; None for Byron/reward addresses."""
    if not raw:
        return None
    kind = raw[0] >> 4
    if kind == _BYRON or kind in _REWARD_TYPES or len(raw) < 29:
        return None
    is_script = kind in (1, 3, 5, 7)
    return ("script" if is_script else "key", raw[1:29].hex())


def enterprise_address(key_hash: bytes, network_id: int) -> bytes:
    """An enterprise (payment-key only) address."""
    return bytes([0x60 | network_id]) + key_hash
