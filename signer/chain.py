"""Cardano encodings the signer needs, computed locally (no pycardano on the hot path).

Key hashes are blake2b-224 of the 32-byte Ed25519 public key. A native script's hash is
blake2b-224 of ``0x00 || script CBOR``. Enterprise addresses are one header byte
(``0x60|network`` for a key hash, ``0x70|network`` for a script hash) plus the 28-byte hash, and are
written in bech32 with the ``addr`` (mainnet) or ``addr_test`` (testnet) prefix.
"""

from __future__ import annotations

import hashlib

import cbor2

from common import bech32

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


bech32_encode = bech32.encode


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a bech32 string (Cardano's, without the 90-character limit); ValueError when invalid."""
    return bech32.decode(text, max_chars=MAX_BECH32_CHARS)
