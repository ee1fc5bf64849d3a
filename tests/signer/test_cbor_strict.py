from __future__ import annotations

import random
from typing import Any

import cbor2
import pytest

from signer.cbor_strict import CborError, Tagged, decode, decode_item
from tests.signer import cbor_reference as reference


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


# --- the iterative decoder against the recursive reference ----------------------------------------

def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([0, 1, 23, 24, 255, 256, 65535, 65536, 2**32, 2**64 - 1, rng.randrange(2**64)])
    if kind == 1:
        return -1 - rng.choice([0, 23, 24, 255, 256, 2**32, 2**64 - 1])
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 23, 24, 28, 32, 57, 300]))
    if kind == 3:
        return rng.choice(["", "v", "root", "ünï", "x" * 30])
    if kind == 4:
        return rng.choice([True, False, None])
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind in (7, 8):
        keys = {rng.choice([rng.randrange(30), "k" + str(rng.randrange(9)), rng.randbytes(2)]) for _ in range(4)}
        return {k: _random_value(rng, depth + 1) for k in keys}
    return cbor2.CBORTag(rng.choice([24, 121, 258, 259, 30000]), _random_value(rng, depth + 1))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice == 1:
            out.insert(rng.randrange(len(out) + 1), rng.choice([0x1F, 0x5F, 0x7F, 0x9F, 0xBF, 0xFF, 0xF9, 0xC2]))
        elif choice == 2 and out:
            del out[rng.randrange(len(out)):]
        elif choice == 3 and out:
            del out[rng.randrange(len(out))]
        else:
            out += bytes([rng.randrange(256)])
    return bytes(out)


def _outcome(decoder: Any, data: bytes) -> Any:
    try:
        return decoder(data, 0)
    except CborError:
        return "refused"


def test_iterative_decoder_matches_the_reference() -> None:
    rng = random.Random(1967)
    cases = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    for _ in range(1500):
        valid = cbor2.dumps(_random_value(rng))
        cases += [valid, _mutate(rng, valid), _mutate(rng, valid)]
    cases += [b"\x81" * 24 + b"\x00", b"\x81" * 25 + b"\x00", b"\x9f" * 24 + b"\xff" * 24, b"\xbf\x01\xff",
              b"\x5f\x41\x01\x9f\xff", b"\x1f", b"\x3f", b"\xdf\x00", b"\xd8", b"\x18", b"\xa1\xf5\x00"]
    refused = 0
    for data in cases:
        expected = _outcome(reference.decode_item, data)
        assert _outcome(decode_item, data) == expected, data.hex()
        refused += expected == "refused"
    assert 0 < refused < len(cases)  # both kinds were exercised
