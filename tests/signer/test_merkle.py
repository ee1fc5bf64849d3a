from __future__ import annotations

import hashlib

import pytest

from signer.merkle import leaf_hash, merkle_proof, merkle_root, node_hash, verify_proof


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


def test_pinned_vectors() -> None:
    # The same numbers are in signer/README.md for the gateway's re-implementation.
    assert leaf_hash("gen-1").hex() == "c101d53b549f4e9046f3726861abd731e0078fc71d7db90196eccee7b63d49e7"
    assert merkle_root(["gen-1", "gen-2"]).hex() == "b37b9ab1211486075d3ae2095d7fd5a129d38f5bfde93971a5e75d99cd49679b"
    root3 = merkle_root(["gen-1", "gen-2", "gen-3"])
    assert root3.hex() == "9e95045c11b1ca3a1bfefb072921461b8208af1bfc2dff48f0d33d2f614330d2"
    assert root3 == node_hash(node_hash(leaf_hash("gen-1"), leaf_hash("gen-2")), leaf_hash("gen-3"))
    assert merkle_proof(["gen-1", "gen-2", "gen-3"], 2) == [("L", merkle_root(["gen-1", "gen-2"]))]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 33])
def test_every_proof_verifies(count: int) -> None:
    ids = [f"id-{i}" for i in range(count)]
    root = merkle_root(ids)
    for i, gid in enumerate(ids):
        proof = merkle_proof(ids, i)
        assert verify_proof(gid, proof, root)
        assert not verify_proof(gid + "x", proof, root)


def test_order_matters_and_empty_is_refused() -> None:
    assert merkle_root(["a", "b"]) != merkle_root(["b", "a"])
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(ValueError):
        merkle_proof(["a"], 1)
