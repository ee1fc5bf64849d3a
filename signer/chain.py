"""Cardano encodings the signer needs, computed locally (no pycardano on the hot path).

Key hashes are blake2b-224 of the 32-byte Ed25519 public key. A native script's hash is
blake2b-224 of ``0x00 || script CBOR``. Enterprise addresses are one header byte
(``0x60|network`` for a key hash, ``0x70|network`` for a script hash) plus the 28-byte hash, and are
written in bech32 with the ``addr`` (mainnet) or ``addr_test`` (testnet) prefix.
"""

from __future__ import annotations

import hashlib

import cbor2

__all__ = [
    "address_hrp",
    "bech32_decode",
    "bech32_encode",
    "blake2b_224",
    "blake2b_256",
    "enterprise_address",
    "key_hash",
    "script_any_of",
    "script_hash",
    "script_sig",
    "unspendable_script",
]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
MAX_BECH32_CHARS = 1023


def blake2b_224(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=28).digest()


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def key_hash(public_key: bytes) -> bytes:
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return blake2b_224(public_key)


def script_sig(key_hash_bytes: bytes) -> bytes:
    """CBOR of the native script ``sig(key_hash)``: ``[0, key_hash]``."""
    return cbor2.dumps([0, key_hash_bytes])


def script_any_of(scripts_cbor: list[bytes]) -> bytes:
    """CBOR of ``any of [...]``: ``[2, [scripts]]``; with no scripts it can never be satisfied."""
    return b"\x82\x02" + _array(scripts_cbor)


def _array(items_cbor: list[bytes]) -> bytes:
    if len(items_cbor) > 23:
        raise ValueError("at most 23 sub-scripts")
    return bytes([0x80 + len(items_cbor)]) + b"".join(items_cbor)


def unspendable_script() -> bytes:
    """The native script "any of []" (``82 02 80``): no witness can ever satisfy it."""
    return script_any_of([])


def script_hash(script_cbor: bytes) -> bytes:
    """Hash of a native script (language tag 0x00)."""
    return blake2b_224(b"\x00" + script_cbor)


def enterprise_address(credential: bytes, network_id: int, *, script: bool) -> bytes:
    if len(credential) != 28:
        raise ValueError("a credential hash has 28 bytes")
    if network_id not in (0, 1):
        raise ValueError("network id is 0 (testnet) or 1 (mainnet)")
    return bytes([(0x70 if script else 0x60) | network_id]) + credential


def address_hrp(network_id: int) -> str:
    return "addr" if network_id == 1 else "addr_test"


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
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
        raise ValueError("invalid bech32 padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert_bits(data, 8, 5, True)
    checksum_input = _hrp_expand(hrp) + words + [0] * 6
    polymod = _polymod(checksum_input) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a bech32 string (Cardano's, without the 90-character limit); ValueError when invalid."""
    if len(text) > MAX_BECH32_CHARS or (text.lower() != text and text.upper() != text):
        raise ValueError("not a bech32 string")
    text = text.lower()
    hrp, sep, rest = text.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        raise ValueError("not a bech32 string")
    words = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise ValueError("bad bech32 checksum")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, False))
