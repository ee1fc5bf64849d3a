"""Bech32 (BIP-173) as Cardano uses it: no 90-character limit, lower-case output.

Addresses, stake addresses, pool ids and keys (``addr_test1…``, ``stake1…``, ``pool1…``) are bech32
of their raw bytes. ``decode`` raises ValueError with the reason, never returns a partial result.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_BECH32_CHARS", "decode", "encode"]

MAX_BECH32_CHARS: Final = 1023
_CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHAR_VALUE: Final = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR: Final = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod_table() -> tuple[int, ...]:
    """XOR mask for each value of the top 5 bits: one lookup per character instead of five tests."""
    table = []
    for top in range(32):
        mask = 0
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                mask ^= gen
        table.append(mask)
    return tuple(table)


_POLYMOD_TABLE: Final = _polymod_table()


def _polymod(values: list[int]) -> int:
    checksum = 1
    table = _POLYMOD_TABLE
    for value in values:
        checksum = ((checksum & 0x1FFFFFF) << 5 ^ value) ^ table[checksum >> 25]
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise ValueError("bech32 data has invalid padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Bech32 of ``data`` with the human-readable prefix ``hrp``."""
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError(f"invalid bech32 prefix {hrp!r}")
    words = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def decode(text: str, *, max_chars: int = MAX_BECH32_CHARS) -> tuple[str, bytes]:
    """Return ``(hrp, data)``; raise ValueError saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError("bech32 string is empty")
    if len(text) > max_chars:
        raise ValueError(f"bech32 string is longer than {max_chars} characters")
    if text.lower() != text and text.upper() != text:
        raise ValueError("bech32 string mixes upper and lower case")
    text = text.lower()
    hrp, sep, data_part = text.rpartition("1")
    if not sep or not hrp or len(data_part) < 6:
        raise ValueError("not a bech32 string (no separator or too short)")
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32 prefix has invalid characters")
    try:
        words = [_CHAR_VALUE[c] for c in data_part]
    except KeyError as exc:
        raise ValueError(f"bech32 data has an invalid character {exc.args[0]!r}") from None
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise ValueError("bech32 checksum is wrong")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))
