"""cardano-cli text envelopes (``.skey`` / ``.vkey``) for plain Ed25519 keys.

A signing key envelope is JSON ``{"type": "PaymentSigningKeyShelley_ed25519", "description": ...,
"cborHex": "5820" + 64 hex}``: the CBOR byte string of the 32-byte seed. Extended (BIP32) keys are
refused: the signer's key stores hold plain Ed25519 keys, which is what PKCS#11 tokens support.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.errors import KeyStoreError

__all__ = ["SKEY_TYPES", "load_skey", "skey_envelope", "vkey_envelope"]

SKEY_TYPES = frozenset({"PaymentSigningKeyShelley_ed25519", "StakeSigningKeyShelley_ed25519"})
MAX_ENVELOPE_BYTES = 16 * 1024


def load_skey(path: Path) -> Ed25519PrivateKey:
    """Read a cardano-cli signing-key envelope; KeyStoreError (never echoing the content) when invalid."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read key envelope {path}: {exc.strerror}") from None
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise KeyStoreError(f"{path} is too large to be a key envelope")
    try:
        envelope = json.loads(raw)
        kind = envelope["type"]
        cbor = bytes.fromhex(envelope["cborHex"])
    except (ValueError, KeyError, TypeError):
        raise KeyStoreError(f"{path} is not a cardano-cli text envelope") from None
    if kind not in SKEY_TYPES:
        raise KeyStoreError(
            f"{path}: key type {kind!r} is not supported; expected one of {sorted(SKEY_TYPES)} "
            "(extended/BIP32 keys cannot live in a PKCS#11 token)")
    if len(cbor) != 34 or cbor[:2] != b"\x58\x20":
        raise KeyStoreError(f"{path}: cborHex is not a 32-byte Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(cbor[2:])


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def skey_envelope(key: Ed25519PrivateKey, description: str = "Payment Signing Key") -> str:
    """The envelope text of ``key`` (used by tests and by operators exporting a fresh key)."""
    return json.dumps({"type": "PaymentSigningKeyShelley_ed25519", "description": description,
                       "cborHex": "5820" + _seed(key).hex()}, indent=4)


def vkey_envelope(public_key: bytes, description: str = "Payment Verification Key") -> str:
    return json.dumps({"type": "PaymentVerificationKeyShelley_ed25519", "description": description,
                       "cborHex": "5820" + public_key.hex()}, indent=4)
