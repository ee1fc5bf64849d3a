"""The transaction id is the hash of the body's original bytes, however they were encoded."""

from __future__ import annotations

import cbor2
import pytest

from signer.cbor_strict import Tagged
from signer.chain import blake2b_256
from signer.errors import Refusal
from signer.tx import decode_transaction


def _indefinite_body() -> bytes:
    # {0: 258([[h'00'*32, 0]]), 1: [_ [h'60'+h'11'*28, 1000000] ], 2: 170000, 3: 500}  — outputs indefinite
    inputs = cbor2.dumps(cbor2.CBORTag(258, [[bytes(32), 0]]))
    outputs = b"\x9f" + cbor2.dumps([b"\x60" + b"\x11" * 28, 1_000_000]) + b"\xff"
    return b"\xa4" + b"\x00" + inputs + b"\x01" + outputs + b"\x02" + cbor2.dumps(170_000) + b"\x03" + cbor2.dumps(500)


def test_original_body_bytes_are_hashed() -> None:
    body = _indefinite_body()
    aux = cbor2.dumps({1967: {"v": 1}})
    tx = decode_transaction(b"\x84" + body + b"\xa0" + b"\xf5" + aux)
    assert tx.body_bytes == body and tx.aux_bytes == aux
    assert tx.tx_id == blake2b_256(body) != blake2b_256(cbor2.dumps(cbor2.loads(body)))
    assert isinstance(tx.body[0], Tagged) and tx.body[0].tag == 258
    bare = decode_transaction(body)
    assert bare.tx_id == tx.tx_id and not bare.full


@pytest.mark.parametrize(("data", "detail"), [
    (b"", "empty"),
    (b"\x83\xa0\xa0\xf5", "4 items"),
    (b"\x9f\xa0\xa0\xf5\xf6\xff", "definite-length"),
    (b"\x84\xa0\xa0\xf5\xf6", "required field"),
    (b"\x84" + b"\xa3\x00\x80\x01\x80\x02\x00" + b"\x80\xf5\xf6", "witness set"),
    (b"\x01" * (16 * 1024 + 1), "limit"),
])
def test_malformed(data: bytes, detail: str) -> None:
    with pytest.raises(Refusal) as info:
        decode_transaction(data)
    assert info.value.reason == "MALFORMED_TRANSACTION" and detail in info.value.detail
