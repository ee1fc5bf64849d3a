"""common.merkle: the definition by hand, the pinned vectors, proofs and their JSON form."""

from __future__ import annotations

import hashlib

import pytest

from common.merkle import (
    all_proofs,
    leaf_hash,
    merkle_root,
    node_hash,
    proof,
    proof_from_json,
    proof_to_json,
    root_of_leaves,
    verify_generation,
    verify_proof,
)


def h(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def test_definition_by_hand() -> None:
    a, b, c = (h(b"\x00" + x) for x in (b"a", b"b", b"c"))
    assert leaf_hash("a") == a
    assert merkle_root(["a"]) == a
    assert merkle_root(["a", "b"]) == h(b"\x01" + a + b)
    # Odd count: "c" is promoted unchanged, never paired with itself.
    assert merkle_root(["a", "b", "c"]) == h(b"\x01" + h(b"\x01" + a + b) + c)
    assert merkle_root(["a", "b", "c"]) != merkle_root(["a", "b", "c", "c"])
    assert root_of_leaves([a, b, c]) == merkle_root(["a", "b", "c"])


def test_pinned_vectors() -> None:
    # The same numbers are in common/merkle.py's docstring and signer/README.md for re-implementations.
    assert leaf_hash("gen-1").hex() == "c101d53b549f4e9046f3726861abd731e0078fc71d7db90196eccee7b63d49e7"
    assert merkle_root(["gen-1", "gen-2"]).hex() == "b37b9ab1211486075d3ae2095d7fd5a129d38f5bfde93971a5e75d99cd49679b"
    root3 = merkle_root(["gen-1", "gen-2", "gen-3"])
    assert root3.hex() == "9e95045c11b1ca3a1bfefb072921461b8208af1bfc2dff48f0d33d2f614330d2"
    assert root3 == node_hash(node_hash(leaf_hash("gen-1"), leaf_hash("gen-2")), leaf_hash("gen-3"))
    assert proof(["gen-1", "gen-2", "gen-3"], 2) == [("L", merkle_root(["gen-1", "gen-2"]))]
    assert proof(["gen-1", "gen-2", "gen-3"], 0) == [("R", leaf_hash("gen-2")), ("R", leaf_hash("gen-3"))]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 33])
def test_every_proof_verifies_and_all_proofs_agree(count: int) -> None:
    ids = [f"id-{i}" for i in range(count)]
    root = merkle_root(ids)
    batch_root, proofs = all_proofs(ids)
    assert batch_root == root
    for i, gid in enumerate(ids):
        steps = proof(ids, i)
        assert proofs[i] == steps
        assert verify_proof(leaf_hash(gid), steps, root)
        assert verify_generation(gid, steps, root)
        assert not verify_generation(gid + "x", steps, root)
        assert not verify_proof(leaf_hash(gid), steps, bytes(32))
        if steps:  # flipping a side breaks the proof
            flipped = [("R" if s == "L" else "L", d) for s, d in steps[:1]] + steps[1:]
            assert not verify_proof(leaf_hash(gid), flipped, root)  # type: ignore[arg-type]


def test_malformed_proofs_are_false_not_errors() -> None:
    ids = ["a", "b", "c"]
    root, leaf = merkle_root(ids), leaf_hash("a")
    assert not verify_proof(leaf, [("X", leaf_hash("b"))], root)  # type: ignore[list-item]
    assert not verify_proof(leaf, [("R", b"short")], root)
    assert not verify_proof(leaf[:31], proof(ids, 0), root)
    assert not verify_proof(leaf, [("R", bytes(32))] * 65, root)


def test_proof_json_round_trip_and_errors() -> None:
    ids = [f"g{i}" for i in range(6)]
    steps = proof(ids, 4)
    as_json = proof_to_json(steps)
    assert as_json == [{"side": s, "hash": d.hex()} for s, d in steps]
    assert proof_from_json(as_json) == steps
    for bad in ({"side": "L"}, {"side": "M", "hash": "00" * 32}, {"side": "L", "hash": "AB" * 32},
                {"side": "L", "hash": "zz" * 32}, {"side": "L", "hash": "00" * 31}, "L"):
        with pytest.raises(ValueError):
            proof_from_json([bad])
    with pytest.raises(ValueError):
        proof_from_json({"side": "L"})


def test_order_matters_and_empty_is_refused() -> None:
    assert merkle_root(["a", "b"]) != merkle_root(["b", "a"])
    for call in (lambda: merkle_root([]), lambda: proof(["a"], 1), lambda: proof(["a"], -1),
                 lambda: all_proofs([]), lambda: root_of_leaves([])):
        with pytest.raises(ValueError):
            call()
