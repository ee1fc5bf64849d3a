"""Text encodings shared by the Ogmios and Kupo servers: bech32, base58, addresses, hashes, JSON bytes."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Final

import orjson

from common import bech32
from devnet.ogmios import cborraw

__all__ = [
    "address_bytes_from_text",
    "address_to_text",
    "base58_decode",
    "base58_encode",
    "bech32_decode",
    "bech32_encode",
    "blake2b_224",
    "blake2b_256",
    "dumps",
    "is_hex",
    "reward_account_to_text",
]

_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_HEX: Final = frozenset("0123456789abcdef")


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2b_224(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=28).digest()


def is_hex(text: object, length: int | None = None) -> bool:
    """Lower-case base16 of an even length (and exactly ``length`` characters when given)."""
    if not isinstance(text, str) or len(text) % 2 or (length is not None and len(text) != length):
        return False
    return set(text) <= _HEX


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; integers beyond 64 bits (legal in Cardano values) fall back to ``json``."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


bech32_encode = bech32.encode


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """Decode bech32 of any length (Cardano addresses exceed BIP-173's 90 characters); None if invalid."""
    try:
        return bech32.decode(text)
    except ValueError:
        return None


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _BASE58_ALPHABET[rem] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def base58_decode(text: str) -> bytes | None:
    number = 0
    for char in text:
        index = _BASE58_ALPHABET.find(char)
        if index < 0:
            return None
        number = number * 58 + index
    pad = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * pad + body


@functools.lru_cache(maxsize=65_536)
def address_to_text(raw: bytes) -> str:
    """Shelley addresses as bech32 (``addr``/``addr_test``), reward accounts ``stake…``, Byron base58."""
    if not raw:
        raise ValueError("empty address")
    kind = raw[0] >> 4
    testnet = (raw[0] & 0x0F) == 0
    if kind <= 7:
        return bech32_encode("addr_test" if testnet else "addr", raw)
    if kind == 8:
        return base58_encode(raw)
    if kind in (14, 15):
        return bech32_encode("stake_test" if testnet else "stake", raw)
    raise ValueError(f"unknown address header {raw[0]:#04x}")


def reward_account_to_text(raw: bytes) -> str:
    return bech32_encode("stake_test" if (raw[0] & 0x0F) == 0 else "stake", raw)


def address_bytes_from_text(text: str) -> bytes | None:
    """Parse a bech32 (``addr``/``addr_test``/``stake``), base16 or base58 address into its bytes."""
    decoded = bech32_decode(text)
    if decoded is not None and decoded[0] in ("addr", "addr_test", "stake", "stake_test"):
        return decoded[1]
    if is_hex(text) and len(text) >= 58:
        return bytes.fromhex(text)
    raw = base58_decode(text)
    if raw and raw[0] == 0x82:  # Byron: [#6.24(bytes), crc32]
        try:
            if cborraw.item_end(raw, 0) == len(raw):
                return raw
        except cborraw.CborError:
            return None
    return None
