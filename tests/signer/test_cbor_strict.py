from __future__ import annotations

import cbor2
import pytest

from signer.cbor_strict import CborError, Tagged, decode, decode_item


def test_round_trips_what_transactions_use() -> None:
    value = {0: [[b"\x00" * 32, 1]], 1: [{0: b"addr", 1: [5, {b"p" * 28: {b"": 1}}]}], 2: 2**64 - 1, 3: -(2**63),
             "text": "ünïcode", 7: None, 8: True, 9: False}
    assert decode(cbor2.dumps(value)) == value


def test_tags_are_kept() -> None:
    assert decode(cbor2.dumps(cbor2.CBORTag(258, [1, 2]))) == Tagged(258, [1, 2])


def test_indefinite_lengths_are_accepted() -> None:
    assert decode(bytes.fromhex("9f0102ff")) == [1, 2]
    assert decode(bytes.fromhex("bf0102ff")) == {1: 2}
    assert decode(bytes.fromhex("5f41014102ff")) == b"\x01\x02"


@pytest.mark.parametrize(("hex_bytes", "message"), [
    ("a201020103", "duplicate"),           # {1: 2, 1: 3}
    ("a2410101410102", "duplicate"),       # {h'01': 1, h'01': 2}
    ("0100", "trailing"),
    ("f93c00", "float"),                   # half float 1.0
    ("f7", "simple"),                      # undefined
    ("c249010000000000000000", "big-number"),
    ("1c", "reserved"),
    ("5820aa", "truncated"),
    ("a1818001", "map key"),               # {[ [] ]: 1}
    ("ff", "break"),
    ("62c328", "UTF-8"),
])
def test_rejects(hex_bytes: str, message: str) -> None:
    with pytest.raises(CborError, match=message):
        decode(bytes.fromhex(hex_bytes.replace(" ", "")))


def test_depth_is_bounded() -> None:
    with pytest.raises(CborError, match="nesting"):
        decode(b"\x81" * 100 + b"\x00")


def test_spans_are_exact() -> None:
    data = cbor2.dumps([{1: 2}, b"xy"])
    value, end = decode_item(data, 1)
    assert value == {1: 2} and data[1:end] == cbor2.dumps({1: 2})
