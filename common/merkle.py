"""The Merkle tree over generation ids that a custodial burn commits to (one implementation for all).

The signer checks a burn's metadata root with it, the gateway's burner builds the root and every
receipt's proof with it, and anyone can re-implement it from this definition, byte for byte:

- ``H`` is BLAKE2b with a 32-byte digest (blake2b-256).
- leaf ``i`` = ``H(0x00 || utf8(generation_ids[i]))``, in the order the ids are listed;
- interior node = ``H(0x01 || left || right)`` (the prefixes keep a leaf from posing as a node);
- levels pair nodes left to right; an odd last node is *promoted* unchanged to the next level (never
  duplicated, so no two id lists share a root);
- the root of one leaf is that leaf; an empty list has no root.

A proof for leaf ``i`` lists, bottom up, ``(side, sibling)``: side ``"L"`` when the sibling sits on the
left (``node = H(0x01 || sibling || node)``), ``"R"`` when on the right; a level where the node was
promoted adds no step. In JSON (receipts) a step is ``{"side": "L", "hash": "<64 lowercase hex>"}``.

Pinned vectors (tests/common/test_merkle.py): ``leaf("gen-1") = c101d53b…b63d49e7``,
``root(["gen-1", "gen-2"]) = b37b9ab1…cd49679b``, ``root(["gen-1", "gen-2", "gen-3"]) = 9e95045c…614330d2``
and the proof of ``gen-3`` in that list is ``[("L", root(["gen-1", "gen-2"]))]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, Literal

__all__ = [
    "HASH_BYTES",
    "ProofStep",
    "Side",
    "all_proofs",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "proof",
    "proof_from_json",
    "proof_to_json",
    "root_of_leaves",
    "verify_generation",
    "verify_proof",
]

HASH_BYTES: Final = 32
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
# A tree over 2**64 leaves is 64 levels deep: a longer proof cannot be honest.
MAX_PROOF_STEPS: Final = 64

Side = Literal["L", "R"]
ProofStep = tuple[Side, bytes]  # (side the sibling sits on, sibling hash)


def leaf_hash(generation_id: str) -> bytes:
    return hashlib.blake2b(LEAF_PREFIX + generation_id.encode("utf-8"), digest_size=HASH_BYTES).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.blake2b(NODE_PREFIX + left + right, digest_size=HASH_BYTES).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level, leaves first, root last."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return levels


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The root over already-hashed leaves; ValueError when there are none."""
    if not leaves:
        raise ValueError("a Merkle root needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_root(generation_ids: Sequence[str]) -> bytes:
    """The 32-byte root over ``generation_ids`` in order; ValueError when the list is empty."""
    if not generation_ids:
        raise ValueError("a Merkle root needs at least one generation id")
    return root_of_leaves([leaf_hash(g) for g in generation_ids])


def _proof_in(levels: list[list[bytes]], index: int) -> list[ProofStep]:
    steps: list[ProofStep] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            steps.append(("L" if sibling < index else "R", level[sibling]))
        index //= 2
    return steps


def proof(generation_ids: Sequence[str], index: int) -> list[ProofStep]:
    """The inclusion proof of ``generation_ids[index]``; ValueError when ``index`` is outside the list."""
    if not 0 <= index < len(generation_ids):
        raise ValueError(f"index {index} outside 0..{len(generation_ids) - 1}")
    return _proof_in(_levels([leaf_hash(g) for g in generation_ids]), index)


def all_proofs(generation_ids: Sequence[str]) -> tuple[bytes, list[list[ProofStep]]]:
    """``(root, [proof of id 0, proof of id 1, ...])`` with the tree built once (a batch's receipts)."""
    if not generation_ids:
        raise ValueError("a Merkle root needs at least one generation id")
    levels = _levels([leaf_hash(g) for g in generation_ids])
    return levels[-1][0], [_proof_in(levels, i) for i in range(len(generation_ids))]


def verify_proof(leaf: bytes, steps: Sequence[ProofStep], root: bytes) -> bool:
    """True when ``steps`` lead from the 32-byte leaf hash ``leaf`` to ``root``. Malformed steps (an
    unknown side, a sibling that is not 32 bytes, more than 64 steps) are False, never an exception."""
    if len(leaf) != HASH_BYTES or len(root) != HASH_BYTES or len(steps) > MAX_PROOF_STEPS:
        return False
    node = leaf
    for step in steps:
        if not isinstance(step, (tuple, list)) or len(step) != 2:
            return False
        side, sibling = step
        if not isinstance(sibling, bytes) or len(sibling) != HASH_BYTES:
            return False
        if side == "L":
            node = node_hash(sibling, node)
        elif side == "R":
            node = node_hash(node, sibling)
        else:
            return False
    return node == root


def verify_generation(generation_id: str, steps: Sequence[ProofStep], root: bytes) -> bool:
    """``verify_proof`` from the generation id itself (the leaf is recomputed, not trusted)."""
    return verify_proof(leaf_hash(generation_id), steps, root)


def proof_to_json(steps: Sequence[ProofStep]) -> list[dict[str, str]]:
    """``[{"side": "L" | "R", "hash": "<64 hex>"}, ...]``, the form a receipt carries."""
    return [{"side": side, "hash": sibling.hex()} for side, sibling in steps]


def proof_from_json(value: Any) -> list[ProofStep]:
    """The inverse of ``proof_to_json``; ValueError naming the first bad step."""
    if not isinstance(value, list) or len(value) > MAX_PROOF_STEPS:
        raise ValueError(f"a proof is a list of at most {MAX_PROOF_STEPS} steps")
    steps: list[ProofStep] = []
    for i, step in enumerate(value):
        if not isinstance(step, dict) or set(step) != {"side", "hash"}:
            raise ValueError(f"proof step {i} must be {{\"side\": \"L\"|\"R\", \"hash\": hex}}")
        side, digest = step["side"], step["hash"]
        if side not in ("L", "R"):
            raise ValueError(f"proof step {i}: side must be \"L\" or \"R\"")
        if not isinstance(digest, str) or len(digest) != 2 * HASH_BYTES or digest != digest.lower():
            raise ValueError(f"proof step {i}: hash must be {2 * HASH_BYTES} lowercase hex characters")
        try:
            steps.append((side, bytes.fromhex(digest)))
        except ValueError:
            raise ValueError(f"proof step {i}: hash is not hex") from None
    return steps
