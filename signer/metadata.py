"""The burn-batch metadata a burn transaction must carry, and its strict reading.

Auxiliary data holds transaction metadata under label **1967**::

    {"v": 1, "n": <number of generation ids>, "root": "<64 lowercase hex: Merkle root>"}

(text keys; ``root`` is the hex of ``signer.merkle.merkle_root(generation_ids)``). Label **674**
(CIP-20) may also be present as ``{"msg": [<text ≤ 64 bytes>, ...]}`` for humans. No other label,
and no scripts inside the auxiliary data. The body's auxiliary-data hash (field 7) must equal
blake2b-256 of the auxiliary data's original bytes.
"""

from __future__ import annotations

from typing import Any

from signer.cbor_strict import Tagged
from signer.chain import blake2b_256
from signer.errors import Refusal
from signer.tx import DecodedTx

__all__ = ["BATCH_LABEL", "MESSAGE_LABEL", "BatchCommitment", "batch_metadata", "read_batch_commitment"]

BATCH_LABEL = 1967
MESSAGE_LABEL = 674
_MISMATCH = "METADATA_MISMATCH"


class BatchCommitment:
    def __init__(self, count: int, root: bytes) -> None:
        self.count = count
        self.root = root


def batch_metadata(count: int, root: bytes) -> dict[int, Any]:
    """The metadata map a burner puts in the transaction (for tests and as the reference)."""
    return {BATCH_LABEL: {"v": 1, "n": count, "root": root.hex()}}


def _metadata_of(aux: Any) -> Any:
    if isinstance(aux, dict):
        return aux
    if isinstance(aux, list):
        if len(aux) != 2 or aux[1] != []:
            raise Refusal(_MISMATCH, "auxiliary data may not carry scripts")
        return aux[0]
    if isinstance(aux, Tagged) and aux.tag == 259 and isinstance(aux.value, dict):
        extra = {k: v for k, v in aux.value.items() if k != 0}
        if any(v != [] for v in extra.values()):
            raise Refusal(_MISMATCH, "auxiliary data may not carry scripts")
        return aux.value.get(0, {})
    raise Refusal(_MISMATCH, "auxiliary data is not in a known format")


def _check_message(value: Any) -> None:
    ok = (isinstance(value, dict) and set(value) == {"msg"} and isinstance(value["msg"], list)
          and all(isinstance(m, str) and len(m.encode()) <= 64 for m in value["msg"]))
    if not ok:
        raise Refusal(_MISMATCH, f'label {MESSAGE_LABEL} must be {{"msg": [text, ...]}}')


def read_batch_commitment(tx: DecodedTx) -> BatchCommitment:
    """The (count, root) the transaction commits to; Refusal(METADATA_MISMATCH) when absent or odd."""
    if not tx.full or tx.aux_bytes is None:
        raise Refusal(_MISMATCH, "a burn must be sent as a full transaction carrying its metadata")
    declared = tx.body.get(7)
    if declared != blake2b_256(tx.aux_bytes):
        raise Refusal(_MISMATCH, "the body's auxiliary data hash does not match the auxiliary data")
    metadata = _metadata_of(tx.aux)
    if not isinstance(metadata, dict):
        raise Refusal(_MISMATCH, "metadata must be a map of labels")
    unknown = sorted(str(label) for label in metadata if label not in (BATCH_LABEL, MESSAGE_LABEL))
    if unknown:
        raise Refusal(_MISMATCH, f"metadata labels {', '.join(unknown)} are not allowed")
    if MESSAGE_LABEL in metadata:
        _check_message(metadata[MESSAGE_LABEL])
    batch = metadata.get(BATCH_LABEL)
    if not isinstance(batch, dict) or set(batch) != {"v", "n", "root"} or batch["v"] != 1:
        raise Refusal(_MISMATCH, f'label {BATCH_LABEL} must be {{"v": 1, "n": count, "root": hex}}')
    count, root_hex = batch["n"], batch["root"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise Refusal(_MISMATCH, "metadata count must be a positive integer")
    if not isinstance(root_hex, str) or len(root_hex) != 64 or root_hex != root_hex.lower():
        raise Refusal(_MISMATCH, "metadata root must be 64 lowercase hex characters")
    try:
        root = bytes.fromhex(root_hex)
    except ValueError:
        raise Refusal(_MISMATCH, "metadata root is not hex") from None
    return BatchCommitment(count, root)
