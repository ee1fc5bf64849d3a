"""The transaction CBOR → Ogmios ``Transaction`` JSON serializer and the raw-CBOR walker it relies on."""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import address_to_text, bech32_decode, bech32_encode
from devnet.ogmios.txjson import TxDecodeError, TxJsonOptions, transaction_json
from tests.devnet.schemas import cardano_validator
from tests.support.devnet_protocols import signed_tx


def _valid(tx_json: dict) -> None:
    errors = list(cardano_validator("Transaction").iter_errors(tx_json))
    assert not errors, errors[0].message


def test_a_rich_transaction_has_every_field_in_ogmios_order(devnet_chain) -> None:
    key = devnet_chain.genesis.keys[0]
    policy_script = [0, key.key_hash]
    policy = hashlib.blake2b(b"\x00" + cbor2.dumps(policy_script), digest_size=28).digest()
    datum = cbor2.dumps(cbor2.CBORTag(121, [42]))
    ref_script = cbor2.CBORTag(24, cbor2.dumps([2, bytes.fromhex("480100002221200101")]))
    outputs = [
        {0: key.address_bytes, 1: [2_000_000, {policy: {b"CREATE": 5, b"": 1}}]},
        {0: key.address_bytes, 1: 3_000_000, 2: [1, cbor2.CBORTag(24, datum)], 3: ref_script},
        {0: key.address_bytes, 1: 2_000_000, 2: [0, b"\x11" * 32]},
    ]
    raw = signed_tx(
        devnet_chain,
        0,
        outputs,
        extra_body={3: 10**9, 8: 5, 9: {policy: {b"CREATE": 5, b"": 1}}, 14: [key.key_hash], 15: 0},
        witness_extra={1: [policy_script]},
        metadata={674: {"msg": ["hi", 7]}, 1: b"\x01\x02", 2: {1: "int key"}},
    )
    tx = transaction_json(raw)
    _valid(tx)
    assert list(tx) == [
        "id", "spends", "inputs", "outputs", "mint", "requiredExtraSignatories", "network", "fee",
        "validityInterval", "metadata", "signatories", "scripts",
    ]  # fmt: skip
    body_start, body_end = cborraw.array_items(raw, 0)[0]
    assert tx["id"] == hashlib.blake2b(raw[body_start:body_end], digest_size=32).hexdigest()
    assert tx["outputs"][0]["value"][policy.hex()] == {"": 1, "435245415445": 5}
    assert tx["outputs"][1]["datum"] == datum.hex()
    assert tx["outputs"][1]["script"] == {"language": "plutus:v2", "cbor": "480100002221200101"}
    assert tx["outputs"][2]["datumHash"] == "11" * 32
    assert tx["validityInterval"] == {"invalidBefore": 5, "invalidAfter": 10**9}
    assert tx["network"] == "testnet"
    assert tx["metadata"]["labels"] == {
        "1": {"cbor": "420102"},  # byte strings have no schema-less JSON form
        "2": {"json": {"1": "int key"}},
        "674": {"json": {"msg": ["hi", 7]}},
    }
    signature = {"clause": "signature", "from": key.key_hash.hex()}
    assert tx["scripts"][policy.hex()] == {"language": "native", "json": signature}
    assert tx["signatories"][0]["key"] == key.vkey.hex()
    assert "cbor" not in tx


def test_cbor_options(devnet_chain) -> None:
    raw = signed_tx(devnet_chain, 0, witness_extra={1: [[1, [[4, 3], [5, 9]]]]}, metadata={5: 5})
    tx = transaction_json(raw, TxJsonOptions(True, True, True))
    _valid(tx)
    assert tx["cbor"] == raw.hex()
    (script,) = tx["scripts"].values()
    clauses = [{"clause": "after", "slot": 3}, {"clause": "before", "slot": 9}]
    assert script["json"] == {"clause": "all", "from": clauses}
    assert script["cbor"] == cbor2.dumps([1, [[4, 3], [5, 9]]]).hex()
    assert tx["metadata"]["labels"]["5"] == {"cbor": "05", "json": 5}


def test_tag_258_sets_and_non_canonical_bodies_keep_the_on_chain_id(devnet_chain) -> None:
    ref, _ = devnet_chain.utxos_at(devnet_chain.genesis.keys[0].address_bytes)[0]
    # an indefinite-length input set under tag 258: the id must hash the bytes as sent
    inputs = b"\xd9\x01\x02\x9f" + cbor2.dumps([bytes.fromhex(ref.tx_id), ref.index]) + b"\xff"
    body = b"\xa3\x00" + inputs + b"\x01\x80\x02\x00"
    raw = b"\x84" + body + b"\xa0\xf5\xf6"
    tx = transaction_json(raw)
    assert tx["id"] == hashlib.blake2b(body, digest_size=32).hexdigest()
    assert tx["inputs"] == [{"transaction": {"id": ref.tx_id}, "index": ref.index}]
    assert tx["signatories"] == [] and tx["outputs"] == [] and tx["fee"] == {"ada": {"lovelace": 0}}


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x84", b"\xa0", b"\x82\xa0\xa0", b"\x84\xa0\xa0\xf5\xf6\x00", b"\x9f\xa0", bytes(range(40))],
)
def test_garbage_is_refused(raw: bytes) -> None:
    with pytest.raises(TxDecodeError):
        transaction_json(raw)


def test_address_and_bech32_round_trip(devnet_chain) -> None:
    key = devnet_chain.genesis.keys[0]
    assert address_to_text(key.address_bytes) == key.address
    assert bech32_decode(key.address) == ("addr_test", key.address_bytes)
    assert bech32_decode(bech32_encode("stake", b"\xe1" + key.key_hash)) == ("stake", b"\xe1" + key.key_hash)
    assert bech32_decode(key.address[:-1] + ("q" if key.address[-1] != "q" else "p")) is None


def test_the_trusted_fast_path_gives_the_same_json(devnet_chain) -> None:
    devnet_chain.produce_blocks(3, fill="typical")
    options = (TxJsonOptions(), TxJsonOptions(True, True, True))
    for tx in (tx for block in devnet_chain.blocks for tx in block.transactions):
        for opts in options:
            assert transaction_json(tx.cbor, opts, tx_id=tx.id) == transaction_json(tx.cbor, opts)
