"""CIP-30 ``signData`` answers (CIP-8 COSE_Sign1 + COSE_Key) checked completely.

pycardano's ``cip8.verify`` checks the signature and that the key matches the embedded address, but
not that the address is the one we asked for, not ``alg``, not the ``hashed`` flag and not whether a
stake key signed. This module checks, in order, and refuses with the first reason:

1. sizes, hex, the COSE_Sign1 shape ``[protected bstr, unprotected map, payload bstr, signature bstr]``
   (tag 18 allowed), a 64-byte signature;
2. the protected header is a map with ``alg`` (1) = EdDSA (-8) and ``address`` = the address asked;
3. the COSE_Key: kty (1) = OKP (1), crv (-1) = Ed25519 (6), ``alg`` EdDSA when present, 32-byte ``x`` (-2);
4. blake2b-224(x) = the address's **payment** key hash (a stake key, or a script address, is refused);
5. the payload is the expected challenge, or its blake2b-224 when ``hashed`` is true (Ledger does that);
6. the Ed25519 signature over ``Sig_structure = ["Signature1", protected, h'', payload]``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cbor2
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gateway.web3.address import WalletAddress, key_hash
from gateway.web3.errors import InvalidSignature

__all__ = ["MAX_KEY_HEX", "MAX_SIGNATURE_HEX", "SignedData", "open_sign_data", "verify_sign_data"]

MAX_SIGNATURE_HEX = 8192
MAX_KEY_HEX = 512
_ALG, _KTY, _CRV, _X = 1, 1, -1, -2
_EDDSA, _OKP, _ED25519 = -8, 1, 6
_COSE_SIGN1_TAG = 18


@dataclass(frozen=True)
class SignedData:
    """A signature that verified for ``address``: ``payload`` is what was signed (a hash when ``hashed``)."""

    payload: bytes
    hashed: bool
    vkey: bytes

    def signs(self, message: bytes) -> bool:
        """True when this signature covers ``message`` (directly, or its blake2b-224 when hashed)."""
        if self.hashed:
            return self.payload == hashlib.blake2b(message, digest_size=28).digest()
        return self.payload == message


def _hex_cbor(text: Any, what: str, limit: int) -> Any:
    if not isinstance(text, str) or not text:
        raise InvalidSignature(f"{what} must be a non-empty hex string")
    if len(text) > limit:
        raise InvalidSignature(f"{what} is longer than {limit} hex characters")
    try:
        return cbor2.loads(bytes.fromhex(text))
    except (ValueError, cbor2.CBORDecodeError, EOFError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidSignature(f"{what} is not valid CBOR hex ({type(exc).__name__})") from None


def _sign1_parts(message: Any) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    if isinstance(message, cbor2.CBORTag):
        if message.tag != _COSE_SIGN1_TAG:
            raise InvalidSignature(f"signature is CBOR tag {message.tag}, not a COSE_Sign1 (18)")
        message = message.value
    if not isinstance(message, list) or len(message) != 4:
        raise InvalidSignature("signature is not a COSE_Sign1 [protected, unprotected, payload, signature]")
    protected, unprotected, payload, signature = message
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise InvalidSignature("COSE_Sign1 headers must be a protected byte string and an unprotected map")
    if payload is None:
        raise InvalidSignature("COSE_Sign1 payload is detached; the payload must be included")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise InvalidSignature("COSE_Sign1 payload and signature must be byte strings")
    if len(signature) != 64:
        raise InvalidSignature(f"an Ed25519 signature has 64 bytes, got {len(signature)}")
    return protected, unprotected, payload, signature


def _check_protected(protected: bytes, address: WalletAddress) -> None:
    try:
        headers = cbor2.loads(protected)
    except (ValueError, cbor2.CBORDecodeError, EOFError, TypeError, OverflowError, RecursionError):
        raise InvalidSignature("protected header is not valid CBOR") from None
    if not isinstance(headers, dict):
        raise InvalidSignature("protected header is not a map")
    if headers.get(_ALG) != _EDDSA:
        raise InvalidSignature(f"protected header alg must be EdDSA (-8), got {headers.get(_ALG)!r:.40}")
    signed_address = headers.get("address")
    if not isinstance(signed_address, bytes):
        raise InvalidSignature("protected header has no address")
    if signed_address != address.raw:
        raise InvalidSignature("the signature is for another address than the one asked")


def _check_key(key: Any, address: WalletAddress) -> bytes:
    if not isinstance(key, dict):
        raise InvalidSignature("key is not a COSE_Key map")
    if key.get(_KTY) != _OKP:
        raise InvalidSignature(f"COSE_Key kty must be OKP (1), got {key.get(_KTY)!r:.40}")
    if key.get(_CRV) != _ED25519:
        raise InvalidSignature(f"COSE_Key crv must be Ed25519 (6), got {key.get(_CRV)!r:.40}")
    if 3 in key and key[3] != _EDDSA:
        raise InvalidSignature(f"COSE_Key alg must be EdDSA (-8), got {key[3]!r:.40}")
    vkey = key.get(_X)
    if not isinstance(vkey, bytes) or len(vkey) != 32:
        raise InvalidSignature("COSE_Key x must be a 32-byte Ed25519 public key")
    expected = address.payment_key_hash
    if expected is None:
        raise InvalidSignature("a script address cannot sign in with signData")
    if key_hash(vkey) != expected:
        raise InvalidSignature("the key is not the address's payment key (a stake key or another key signed)")
    return vkey


def open_sign_data(signature_hex: str, key_hex: str, address: WalletAddress) -> SignedData:
    """Checks 1-4 and 6: a genuine signature by ``address``'s payment key; the payload is returned."""
    protected, unprotected, payload, signature = _sign1_parts(
        _hex_cbor(signature_hex, "signature", MAX_SIGNATURE_HEX))
    _check_protected(protected, address)
    vkey = _check_key(_hex_cbor(key_hex, "key", MAX_KEY_HEX), address)
    hashed = unprotected.get("hashed", False)
    if not isinstance(hashed, bool):
        raise InvalidSignature("unprotected header 'hashed' must be a boolean")
    if hashed and len(payload) != 28:
        raise InvalidSignature("a hashed payload must be a 28-byte blake2b-224 digest")
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    try:
        VerifyKey(vkey).verify(sig_structure, signature)
    except BadSignatureError:
        raise InvalidSignature("the signature does not verify") from None
    return SignedData(payload=payload, hashed=hashed, vkey=vkey)


def verify_sign_data(signature_hex: str, key_hex: str, address: WalletAddress, expected: bytes) -> SignedData:
    """Every check, including 5: the signed payload is ``expected`` (or its hash when ``hashed``)."""
    signed = open_sign_data(signature_hex, key_hex, address)
    if not signed.signs(expected):
        raise InvalidSignature("the signed payload is not the challenge")
    return signed
