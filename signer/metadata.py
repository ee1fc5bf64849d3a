"""Reading a burn transaction's auxiliary data: where its metadata sits, and the commitment in it.

The commitment itself (label 1967 ``{"v", "n", "root"}``, optional label 674) is the shared codec in
``common.commitment``; this module only unwraps the auxiliary data around it, strictly. Accepted
formats: a plain metadata map, the Mary-era ``[metadata, []]``, or the Alonzo-and-later tag 259 map
``{0: metadata}`` whose other keys (1 native scripts, 2-4 Plutus scripts) may only be empty arrays;
any other key is refused, as the ledger would. The body's auxiliary-data hash (field 7) must equal
blake2b-256 of the auxiliary data's original bytes.
"""

from __future__ import annotations

from typing import Any

from common.commitment import Commitment, CommitmentError, parse_metadata
from signer.cbor_strict import Tagged
from signer.chain import blake2b_256
from signer.errors import Refusal
from signer.tx import DecodedTx

__all__ = ["read_batch_commitment"]

_MISMATCH = "METADATA_MISMATCH"
_SCRIPT_KEYS = frozenset({1, 2, 3, 4})  # native, Plutus V1, V2, V3 scripts


def _metadata_of(aux: Any) -> Any:
    if isinstance(aux, dict):
        return aux
    if isinstance(aux, list):
        if len(aux) != 2 or aux[1] != []:
            raise Refusal(_MISMATCH, "auxiliary data may not carry scripts")
        return aux[0]
    if isinstance(aux, Tagged) and aux.tag == 259 and isinstance(aux.value, dict):
        unknown = sorted(str(k) for k in aux.value if k != 0 and k not in _SCRIPT_KEYS)
        if unknown:
            raise Refusal(_MISMATCH, f"auxiliary data (tag 259) has unknown keys {', '.join(unknown)}")
        if any(aux.value[k] != [] for k in _SCRIPT_KEYS if k in aux.value):
            raise Refusal(_MISMATCH, "auxiliary data may not carry scripts")
        return aux.value.get(0, {})
    raise Refusal(_MISMATCH, "auxiliary data is not in a known format")


def read_batch_commitment(tx: DecodedTx) -> Commitment:
    """The (count, root) the transaction commits to; Refusal(METADATA_MISMATCH) when absent or odd."""
    if not tx.full or tx.aux_bytes is None:
        raise Refusal(_MISMATCH, "a burn must be sent as a full transaction carrying its metadata")
    if tx.body.get(7) != blake2b_256(tx.aux_bytes):
        raise Refusal(_MISMATCH, "the body's auxiliary data hash does not match the auxiliary data")
    try:
        return parse_metadata(_metadata_of(tx.aux))
    except CommitmentError as exc:
        raise Refusal(_MISMATCH, str(exc)) from None
