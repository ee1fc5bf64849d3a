"""Cardano address bytes <-> text (bech32 for Shelley, base58 for Byron) and credential access."""

from __future__ import annotations

from functools import lru_cache

import base58

__all__ = [
    "AddressError",
    "address_from_text",
    "address_network",
    "address_to_text",
    "enterprise_address",
    "payment_credential",
]

_BYRON = 8
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
MAX_BECH32_LENGTH = 1023
_REWARD_TYPES = (14, 15)


class AddressError(ValueError):
    """An address that cannot be parsed."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= gen
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: list[int] | bytes, from_bits: int, to_bits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & maxv)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & maxv):
        return None
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert_bits(data, 8, 5, True) or []
    polymod = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    if len(text) > MAX_BECH32_LENGTH or text.lower() != text or "1" not in text:
        return None
    pos = text.rfind("1")
    hrp, rest = text[:pos], text[pos + 1 :]
    if not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        return None
    words = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        return None
    data = _convert_bits(words[:-6], 5, 8, False)
    return None if data is None else (hrp, bytes(data))


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
