"""Transaction decoding: ids over the original body bytes; malformed CBOR gets -32602 with per-era data."""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from devnet.chain import Chain
from devnet.ledger.decode import MAX_TX_CBOR_BYTES, decode_tx
from tests.devnet.ledger_support import make_chain, rejection
from tests.devnet.schemas import validate_ogmios
from tests.devnet.test_ledger_rules import payment

ERAS = {"shelley", "allegra", "mary", "alonzo", "babbage", "conway"}


@pytest.fixture
def chain() -> Chain:
    return make_chain()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\xff\xff\xff",
        b"\x84\x01\x02",  # truncated array
        cbor2.dumps([1, 2, 3, 4]),
        cbor2.dumps({"not": "a tx"}),
        cbor2.dumps([{0: [], 1: [], 2: 0}, {}, True]),  # three elements
        cbor2.dumps([{0: [[b"\x00" * 31, 0]], 1: [], 2: 0}, {}, True, None]),  # short tx id
        cbor2.dumps([{0: [], 1: [[b"", 1]], 2: 0}, {}, True, None]),  # empty address
        cbor2.dumps([{0: [], 1: [], 2: -5}, {}, True, None]),  # negative fee
        cbor2.dumps([{0: [], 1: [], 2: 0}, {1: [[9, 9]]}, True, None]),  # bad native script
        b"\x9f" * 5000,  # deep indefinite nesting
    ],
)
def test_malformed_cbor_is_32602_with_one_message_per_era(chain: Chain, raw: bytes) -> None:
    error = rejection(chain, raw)
    assert error.code == -32602
    assert set(error.data) == ERAS and all(isinstance(v, str) and v for v in error.data.values())
    validate_ogmios(
        "SubmitTransactionResponse",
        {"jsonrpc": "2.0", "method": "submitTransaction", "error": error.to_error(), "id": None},
    )


def test_trailing_bytes_are_refused(chain: Chain) -> None:
    assert rejection(chain, payment(chain).to_cbor() + b"\x00").code == -32602


def test_huge_input_is_refused_without_decoding(chain: Chain) -> None:
    error = rejection(chain, b"\x84" + b"\x00" * MAX_TX_CBOR_BYTES)
    assert error.code == -32602 and "larger than" in error.data["conway"]


def test_id_is_the_hash_of_the_original_body_bytes(chain: Chain) -> None:
    tx = payment(chain).to_cbor()
    decoded = decode_tx(tx)
    assert decoded.id == hashlib.blake2b(decoded.body_bytes, digest_size=32).hexdigest()
    assert tx[1:].startswith(decoded.body_bytes)
    # A non-canonical (indefinite-length) encoding of the same body has its own id, as on mainnet.
    body = cbor2.loads(decoded.body_bytes)
    indefinite = b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in body.items()) + b"\xff"
    rebuilt = b"\x84" + indefinite + tx[1 + len(decoded.body_bytes) :]
    other = decode_tx(rebuilt)
    assert other.body_bytes == indefinite
    assert other.id == hashlib.blake2b(indefinite, digest_size=32).hexdigest() != decoded.id


def test_decoded_fields(chain: Chain) -> None:
    tx = payment(chain, ttl=5000)
    decoded = decode_tx(tx.to_cbor())
    assert decoded.fee == tx.transaction_body.fee
    assert decoded.ttl == 5000 and decoded.validity_start is None
    assert [o.lovelace for o in decoded.outputs] == [o.amount.coin for o in tx.transaction_body.outputs]
    assert decoded.outputs[0].address == chain.genesis.keys[1].address
    assert decoded.vkey_witnesses[0][0] == chain.genesis.keys[0].vkey
