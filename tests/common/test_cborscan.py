"""common.cborscan: item spans over the original bytes, and the refusals of malformed or hostile CBOR.

The first two tests came from the gateway's splicer tests and the devnet's Ogmios serializer tests, whose
scanners this module replaced.
"""

from __future__ import annotations

import cbor2
import pytest

from common.cborscan import CborScanError, array_spans, item_end, map_spans, split_array


def test_cbor_spans() -> None:
    data = cbor2.dumps([{1: [b"x" * 30, "y" * 300]}, cbor2.CBORTag(258, [1, -2**40]), None, 2.5])
    assert [cbor2.loads(i) for i in split_array(data)] == cbor2.loads(data)
    assert item_end(b"\x9f\x01\x5f\x41\x00\xff\xff") == 7  # indefinite array holding an indefinite string
    for bad in (b"", b"\x9b" + b"\xff" * 8, b"\x1c", b"\x82\x01", b"\x81\x01\x01", b"\x5a\x00\x00\x00\x09ab"):
        with pytest.raises(CborScanError):
            split_array(bad) if bad[:1] in (b"\x82", b"\x81", b"\x9b") else item_end(bad)


def test_cbor_walker_spans() -> None:
    data = cbor2.dumps({1: [1, 2, {"a": b"xy"}], 2: cbor2.CBORTag(258, [3])}) + b"\x00"
    pairs, _ = map_spans(data, 0)
    first_value = pairs[0][1]
    assert cbor2.loads(data[first_value[0] : first_value[1]]) == [1, 2, {"a": b"xy"}]
    assert item_end(data, 0) == len(data) - 1
    assert array_spans(data, pairs[1][1][0])[0] == [(pairs[1][1][1] - 1, pairs[1][1][1])]
    with pytest.raises(CborScanError):
        item_end(b"\x5a\xff\xff\xff\xff", 0)  # a byte string longer than the input
    with pytest.raises(CborScanError):
        item_end(b"\x81" * 1000 + b"\x00", 0)  # nesting bomb


def test_indefinite_containers_end_after_their_break() -> None:
    data = b"\x9f\x01\xbf\x61a\x02\xff\xff" + b"\x07"  # [_ 1, {_ "a": 2}] then another item
    spans, end = array_spans(data)
    assert end == len(data) - 1 and [data[a:b] for a, b in spans] == [b"\x01", b"\xbf\x61a\x02\xff"]
    pairs, end = map_spans(data, 2)
    assert end == 7 and [(data[k0:k1], data[v0:v1]) for (k0, k1), (v0, v1) in pairs] == [(b"\x61a", b"\x02")]


@pytest.mark.parametrize("bad", [
    b"\xbf\x01\xff",  # a break where the value of key 1 should be
    b"\x5f\x61a\xff",  # a text chunk inside an indefinite byte string
    b"\x9f\x01",  # an indefinite array without its break
    b"\xff",  # a lone break
    b"\x1f",  # indefinite length on an integer
])
def test_malformed_items_refused(bad: bytes) -> None:
    with pytest.raises(CborScanError):
        item_end(bad)


def test_tags_skipped_unless_refused() -> None:
    data = cbor2.dumps(cbor2.CBORTag(258, [b"a", b"b"]))
    assert [data[a:b] for a, b in array_spans(data)[0]] == [b"\x41a", b"\x41b"]
    with pytest.raises(CborScanError, match="expected an array"):
        array_spans(data, skip_tags=False)
    with pytest.raises(CborScanError, match="expected a map"):
        map_spans(cbor2.dumps([1]))


def test_max_depth_bounds_nesting() -> None:
    nested = b"\x81" * 10 + b"\x00"
    assert item_end(nested, max_depth=10) == len(nested)
    with pytest.raises(CborScanError, match="nested too deeply"):
        item_end(nested, max_depth=9)
    assert len(split_array(b"\x81" + nested, max_depth=11)) == 1  # elements sit one level inside the array
    with pytest.raises(CborScanError, match="nested too deeply"):
        split_array(b"\x81" + nested, max_depth=10)
