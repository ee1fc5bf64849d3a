"""The label-1967 commitment a custodial burn carries in its transaction metadata (the one codec).

A burn of ``n`` generations carries, under metadata label **1967**::

    {"v": 1, "n": <n>, "root": "<64 lowercase hex: common.merkle.merkle_root(generation_ids)>"}

with text keys and integers that are integers (CBOR major type 0, never ``true``: Python's
``True == 1`` must not pass). Label **674** (CIP-20) may add ``{"msg": [<text ≤ 64 bytes>, ...]}`` for
humans; no other label. ``root`` is 64 characters, exactly the ledger's limit on a metadata string.

``commitment_metadata`` builds the metadata map (the burner); ``parse_metadata`` reads a decoded
metadata map strictly (the signer, and anyone checking a receipt against the chain) and raises
``CommitmentError`` naming what is wrong. Both sides use the same map: ``{1967: {...}, 674: {...}}``
with integer labels, as ``cbor2`` or the signer's strict decoder return it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from common import merkle

__all__ = [
    "COMMITMENT_LABEL",
    "COMMITMENT_VERSION",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_LABEL",
    "Commitment",
    "CommitmentError",
    "commitment_for",
    "commitment_metadata",
    "parse_commitment",
    "parse_metadata",
]

COMMITMENT_LABEL: Final = 1967
MESSAGE_LABEL: Final = 674
COMMITMENT_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64


class CommitmentError(ValueError):
    """The metadata is not exactly a burn commitment; the message says why."""


@dataclass(frozen=True)
class Commitment:
    count: int
    root: bytes

    def as_label_value(self) -> dict[str, Any]:
        """The value stored under label 1967."""
        return {"v": COMMITMENT_VERSION, "n": self.count, "root": self.root.hex()}


def commitment_for(generation_ids: Sequence[str]) -> Commitment:
    """The commitment to ``generation_ids`` in order (ValueError when empty)."""
    return Commitment(len(generation_ids), merkle.merkle_root(generation_ids))


def commitment_metadata(commitment: Commitment, messages: Sequence[str] = ()) -> dict[int, Any]:
    """The transaction metadata map for a burn: label 1967, and label 674 when ``messages`` are given."""
    if commitment.count < 1 or len(commitment.root) != merkle.HASH_BYTES:
        raise ValueError("a commitment needs a positive count and a 32-byte root")
    metadata: dict[int, Any] = {COMMITMENT_LABEL: commitment.as_label_value()}
    if messages:
        _check_messages({"msg": list(messages)})
        metadata[MESSAGE_LABEL] = {"msg": list(messages)}
    return metadata


def _is_int(value: Any) -> bool:
    return type(value) is int  # exact: bool is a subclass of int


def _check_messages(value: Any) -> None:
    ok = (isinstance(value, dict) and set(value) == {"msg"} and type(value["msg"]) is list
          and all(type(m) is str and len(m.encode("utf-8")) <= MAX_MESSAGE_BYTES for m in value["msg"]))
    if not ok:
        raise CommitmentError(f'label {MESSAGE_LABEL} must be {{"msg": [text of at most '
                              f'{MAX_MESSAGE_BYTES} bytes, ...]}}')


def parse_commitment(value: Any) -> Commitment:
    """The value under label 1967, read with exact types."""
    if not isinstance(value, dict) or set(value) != {"v", "n", "root"} or not all(type(k) is str for k in value):
        raise CommitmentError(f'label {COMMITMENT_LABEL} must be {{"v": 1, "n": count, "root": hex}}')
    version, count, root_hex = value["v"], value["n"], value["root"]
    if not _is_int(version) or version != COMMITMENT_VERSION:
        raise CommitmentError(f"metadata version must be the integer {COMMITMENT_VERSION}")
    if not _is_int(count) or count < 1:
        raise CommitmentError("metadata count must be a positive integer")
    if type(root_hex) is not str or len(root_hex) != 2 * merkle.HASH_BYTES or root_hex != root_hex.lower():
        raise CommitmentError("metadata root must be 64 lowercase hex characters")
    try:
        root = bytes.fromhex(root_hex)
    except ValueError:
        raise CommitmentError("metadata root is not hex") from None
    return Commitment(count, root)


def parse_metadata(metadata: Any) -> Commitment:
    """A whole metadata map that must hold label 1967, optionally 674, and nothing else."""
    if not isinstance(metadata, Mapping):
        raise CommitmentError("metadata must be a map of labels")
    if not all(_is_int(label) for label in metadata):
        raise CommitmentError("metadata labels must be unsigned integers")
    unknown = sorted(str(label) for label in metadata if label not in (COMMITMENT_LABEL, MESSAGE_LABEL))
    if unknown:
        raise CommitmentError(f"metadata labels {', '.join(unknown)} are not allowed")
    if MESSAGE_LABEL in metadata:
        _check_messages(metadata[MESSAGE_LABEL])
    if COMMITMENT_LABEL not in metadata:
        raise CommitmentError(f"metadata label {COMMITMENT_LABEL} is missing")
    return parse_commitment(metadata[COMMITMENT_LABEL])
