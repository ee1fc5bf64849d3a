"""Splice a wallet's witnesses into the quote's ORIGINAL transaction bytes.

CIP-30 ``signTx(tx, partialSign=true)`` returns a witness set holding only the wallet's witnesses
(some wallets repeat ones already present); Mesh's ``returnFullTx`` returns the whole signed tx. Either
way the body and auxiliary data we built are copied byte for byte — re-encoding them could change the
tx id — and only a new witness set is written. Refused, with the reason:

- anything that is not a witness set map or a 4-element transaction, or over the size limit;
- a full tx whose body or auxiliary bytes differ from ours at all (an extra output, a re-encoded body);
- witness kinds other than vkeys (scripts, bootstrap, Plutus data: the quote needs none);
- a vkey whose key is not one of the payment keys the inputs need (foreign key), a signature that
  does not verify against the body hash, and a missing required signature.
Identical repeated witnesses are kept once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cbor2
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from gateway.web3.address import key_hash
from gateway.web3.cborspan import CborSpanError, array_items
from gateway.web3.errors import InvalidWitnessSet

__all__ = ["MAX_WITNESS_HEX", "SplicedTx", "splice_witnesses"]

MAX_WITNESS_HEX = 2 * 32 * 1024
_SET_TAG = 258


@dataclass(frozen=True)
class SplicedTx:
    cbor: bytes
    witnesses: int


def _loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except (ValueError, cbor2.CBORDecodeError, EOFError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidWitnessSet(f"{what} is not valid CBOR ({type(exc).__name__})") from None


def _wallet_witness_bytes(answer: bytes, original: list[bytes]) -> Any:
    """The witness set the wallet sent: its own, or the one inside a full signed tx with our exact body."""
    if answer[:1] and answer[0] >> 5 == 4:  # an array: a whole transaction
        try:
            parts = array_items(answer)
        except CborSpanError as exc:
            raise InvalidWitnessSet(f"the signed transaction is not well-formed CBOR: {exc}") from None
        if len(parts) != 4:
            raise InvalidWitnessSet("a signed transaction has 4 parts [body, witnesses, valid, auxiliary data]")
        if parts[0] != original[0]:
            raise InvalidWitnessSet("the signed transaction's body is not the quote's body byte for byte")
        if parts[2] != original[2] or parts[3] != original[3]:
            raise InvalidWitnessSet("the signed transaction's validity flag or auxiliary data differ from the quote's")
        return _loads(parts[1], "the witness set")
    return _loads(answer, "the witness set")


def _vkey_pairs(witness_set: Any) -> list[tuple[bytes, bytes]]:
    if not isinstance(witness_set, dict):
        raise InvalidWitnessSet("the witness set must be a CBOR map")
    unexpected = sorted(str(k) for k in witness_set if k != 0)
    if unexpected:
        raise InvalidWitnessSet(f"only vkey witnesses (key 0) are accepted; got witness kinds {', '.join(unexpected)}")
    raw = witness_set.get(0, [])
    if isinstance(raw, cbor2.CBORTag) and raw.tag == _SET_TAG:
        raw = raw.value
    if isinstance(raw, set | frozenset):  # cbor2 decodes a tag-258 set itself (items become tuples)
        raw = sorted(raw)
    if not isinstance(raw, list):
        raise InvalidWitnessSet("vkey witnesses must be a list")
    pairs: list[tuple[bytes, bytes]] = []
    for item in raw:
        if (not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[0], bytes)
                or not isinstance(item[1], bytes) or len(item[0]) != 32 or len(item[1]) != 64):
            raise InvalidWitnessSet("a vkey witness is [32-byte key, 64-byte signature]")
        pairs.append((item[0], item[1]))
    return pairs


def splice_witnesses(original_tx: bytes, answer_hex: str, *, tx_id: str,
                     required_signers: Iterable[bytes]) -> SplicedTx:
    """The signed tx: our original body + a witness set of the wallet's checked, de-duplicated vkeys."""
    if not isinstance(answer_hex, str) or not answer_hex:
        raise InvalidWitnessSet("witness_set must be a non-empty hex string")
    if len(answer_hex) > MAX_WITNESS_HEX:
        raise InvalidWitnessSet(f"witness_set is longer than {MAX_WITNESS_HEX} hex characters")
    try:
        answer = bytes.fromhex(answer_hex)
    except ValueError:
        raise InvalidWitnessSet("witness_set is not hex") from None
    original = array_items(original_tx)
    pairs = _vkey_pairs(_wallet_witness_bytes(answer, original))
    required = set(required_signers)
    body_hash = bytes.fromhex(tx_id)
    unique: dict[bytes, bytes] = {}
    for vkey, signature in pairs:
        if key_hash(vkey) not in required:
            raise InvalidWitnessSet(f"a witness is from key {key_hash(vkey).hex()}, which none of the inputs needs")
        if unique.get(vkey) == signature:
            continue
        try:
            VerifyKey(vkey).verify(body_hash, signature)
        except BadSignatureError:
            raise InvalidWitnessSet(
                f"the signature of key {key_hash(vkey).hex()} does not verify against the body hash") from None
        unique.setdefault(vkey, signature)
    missing = required - {key_hash(v) for v in unique}
    if missing:
        raise InvalidWitnessSet(f"missing signatures of payment keys {', '.join(sorted(m.hex() for m in missing))}")
    witness_set = cbor2.dumps({0: [[v, s] for v, s in unique.items()]})
    return SplicedTx(cbor=b"\x84" + original[0] + witness_set + original[2] + original[3], witnesses=len(unique))
