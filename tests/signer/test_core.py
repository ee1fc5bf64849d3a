from __future__ import annotations

import cbor2
import pytest

from signer.core import witness_set_cbor


@pytest.mark.parametrize("count", [0, 1, 2, 23])
def test_witness_set_is_the_cbor2_encoding(count: int) -> None:
    pairs = [(bytes([i]) * 32, bytes([i + 1]) * 64) for i in range(count)]
    assert witness_set_cbor(pairs) == cbor2.dumps({0: [list(p) for p in pairs]})


def test_witness_set_refuses_odd_sizes() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        witness_set_cbor([(b"k" * 31, b"s" * 64)])
