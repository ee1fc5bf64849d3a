"""The Merkle tree over generation ids that a burn transaction commits to in its metadata.

Exact definition (the gateway re-implements it from signer/README.md, byte for byte):

- ``H`` is BLAKE2b with a 32-byte digest (blake2b-256).
- Leaf ``i`` = ``H(0x00 || utf8(generation_ids[i]))``, in the order the ids are sent.
- Interior node = ``H(0x01 || left || right)``.
- Levels are built pairwise left to right; when a level has an odd number of nodes, the last one
  is *promoted* unchanged to the next level (never duplicated, so no two id lists share a root).
- The root of one leaf is that leaf. An empty list has no root.

A proof for leaf ``i`` lists, from the bottom up, each sibling with the side it sits on
(``"L"`` or ``"R"``); a promoted level contributes no step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["ProofStep", "leaf_hash", "merkle_proof", "merkle_root", "node_hash", "verify_proof"]

ProofStep = tuple[str, bytes]  # ("L" | "R", sibling hash)


def leaf_hash(generation_id: str) -> bytes:
    return hashlib.blake2b(b"\x00" + generation_id.encode("utf-8"), digest_size=32).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.blake2b(b"\x01" + left + right, digest_size=32).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def merkle_root(generation_ids: Sequence[str]) -> bytes:
    """The 32-byte root over ``generation_ids`` in order; ValueError when the list is empty."""
    if not generation_ids:
        raise ValueError("a Merkle root needs at least one generation id")
    level = [leaf_hash(g) for g in generation_ids]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_proof(generation_ids: Sequence[str], index: int) -> list[ProofStep]:
    """The inclusion proof of ``generation_ids[index]``."""
    if not 0 <= index < len(generation_ids):
        raise ValueError(f"index {index} outside 0..{len(generation_ids) - 1}")
    level = [leaf_hash(g) for g in generation_ids]
    steps: list[ProofStep] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            steps.append(("L" if sibling < index else "R", level[sibling]))
        level = _next_level(level)
        index //= 2
    return steps


def verify_proof(generation_id: str, proof: Sequence[ProofStep], root: bytes) -> bool:
    node = leaf_hash(generation_id)
    for side, sibling in proof:
        if side == "L":
            node = node_hash(sibling, node)
        elif side == "R":
            node = node_hash(node, sibling)
        else:
            return False
    return node == root
