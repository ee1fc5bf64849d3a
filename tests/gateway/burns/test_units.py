"""The burns domain's pure parts: the tx builder, the proof-side rule, the burn reader, receipts."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import pytest

from common import bech32, merkle
from common.cardano import AssetId, Value
from common.commitment import COMMITMENT_LABEL, parse_metadata
from gateway.burns.services import build_receipt
from gateway.burns.signer import SignerCaps, SignerIdentity
from gateway.burns.store import Batch
from gateway.burns.txbuild import BurnInput, BurnNotBuildable, FeeParams, build_burn_tx, signed_tx
from gateway.burns.verify import SINK_SCRIPT_HASH, burned_by, expected_sides
from gateway.web3.chain import ChainTx, TxOutput

POLICY = "ab" * 28
NAME = "435245415445"
ASSET = AssetId(POLICY, NAME)
CUSTODIAL = bech32.encode("addr_test", bytes([0x60]) + bytes(range(28)))
SINK = bech32.encode("addr_test", bytes([0x70]) + bytes.fromhex(SINK_SCRIPT_HASH))
PARAMS = FeeParams(min_fee_a=44, min_fee_b=155_381, coins_per_utxo_byte=4_310, max_tx_size=16_384)
SCRIPT = cbor2.dumps([0, bytes(28)])


def identity(mode: str = "mint") -> SignerIdentity:
    caps = SignerCaps(2_000_000, 3_000_000, 100, 10_000, 3_600, 100)
    return SignerIdentity(CUSTODIAL, "00" * 28, POLICY, SCRIPT if mode == "mint" else b"", POLICY, NAME, mode,
                          SINK, 0, caps)


def utxo(lovelace: int = 50_000_000, tokens: int = 500, index: int = 0) -> BurnInput:
    return BurnInput("11" * 32, index, Value(lovelace, {ASSET: tokens}))


def decoded_body(tx: bytes) -> dict[int, Any]:
    body: dict[int, Any] = cbor2.loads(tx)[0]
    return body


@pytest.mark.parametrize("mode", ["mint", "address"])
def test_burn_tx_fee_is_exact_for_the_signed_size_and_value_is_conserved(mode: str) -> None:
    ids = [f"gen-{i}" for i in range(37)]
    built = build_burn_tx([utxo(), utxo(index=1)], ids, identity=identity(mode), params=PARAMS, ttl_slot=5_000)
    body = decoded_body(built.unsigned)
    assert hashlib.blake2b(built.body, digest_size=32).hexdigest() == built.tx_id
    vkeys = 2 if mode == "mint" else 1
    witnesses = cbor2.dumps([[bytes(32), bytes(64)]] * vkeys)
    fake_ws = cbor2.dumps({0: cbor2.loads(witnesses)})
    final = signed_tx(built.body, built.aux, fake_ws, SCRIPT, mode == "mint")
    assert body[2] == built.fee >= PARAMS.min_fee_a * len(final) + PARAMS.min_fee_b
    assert built.fee - (PARAMS.min_fee_a * len(final) + PARAMS.min_fee_b) < PARAMS.min_fee_a * 2
    assert body[3] == 5_000 and body[15] == 0 and 4 not in body and 5 not in body
    assert body[7] == hashlib.blake2b(built.aux, digest_size=32).digest()
    commitment = parse_metadata(cbor2.loads(built.aux))
    assert (commitment.count, commitment.root) == (37, merkle.merkle_root(ids))
    out_lovelace = sum(o[1][0] if isinstance(o[1], list) else o[1] for o in body[1])
    assert out_lovelace + built.fee == 100_000_000
    if mode == "mint":
        assert body[9] == {bytes.fromhex(POLICY): {bytes.fromhex(NAME): -37}}
        assert body[1][0][1][1][bytes.fromhex(POLICY)][bytes.fromhex(NAME)] == 1_000 - 37
    else:
        assert 9 not in body
        sink_out = body[1][0]
        assert sink_out[1][1] == {bytes.fromhex(POLICY): {bytes.fromhex(NAME): 37}}
        assert sink_out[1][0] == (160 + len(cbor2.dumps(sink_out))) * PARAMS.coins_per_utxo_byte


def test_burn_tx_splits_the_change_into_lanes_each_above_min_utxo() -> None:
    built = build_burn_tx([utxo(100_000_000, 1_000)], ["a", "b"], identity=identity(), params=PARAMS,
                          ttl_slot=9, lanes_out=4)
    body = decoded_body(built.unsigned)
    assert [index for index, _, _ in built.change] == [0, 1, 2, 3]
    assert sum(tokens for _, _, tokens in built.change) == 998
    for out in body[1]:
        assert out[1][0] >= (160 + len(cbor2.dumps(out))) * PARAMS.coins_per_utxo_byte


def test_burn_tx_refuses_what_the_inputs_cannot_pay() -> None:
    with pytest.raises(BurnNotBuildable, match="hold 3"):
        build_burn_tx([utxo(tokens=3)], ["a", "b", "c", "d"], identity=identity(), params=PARAMS, ttl_slot=9)
    with pytest.raises(BurnNotBuildable, match="min-UTxO"):
        build_burn_tx([utxo(lovelace=1_000_000)], ["a"], identity=identity(), params=PARAMS, ttl_slot=9)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13, 100])
def test_expected_sides_match_every_real_proof(count: int) -> None:
    ids = [f"g{i}" for i in range(count)]
    for index in range(count):
        assert [side for side, _ in merkle.proof(ids, index)] == expected_sides(index, count)


def test_burned_by_reads_a_negative_mint_or_the_sink() -> None:
    mint = ChainTx("aa" * 32, 1, 1, (), (), {ASSET: -7}, 1)
    assert burned_by(mint)[0] == 7 and burned_by(mint, AssetId("cd" * 28, NAME))[0] == 0
    sunk = ChainTx("aa" * 32, 1, 1, (), (TxOutput(0, SINK, Value(1_500_000, {ASSET: 4})),
                                         TxOutput(1, CUSTODIAL, Value(9, {ASSET: 99}))), {}, 1)
    assert burned_by(sunk) == (4, "sent to the unspendable sink")


def test_receipt_proves_its_generation() -> None:
    ids = [f"gen-{i}" for i in range(11)]
    root = merkle.merkle_root(ids).hex()
    batch = Batch("b", 0, "final", 11, root, ids, "cc" * 32, b"", b"", None, 1, 2, [], [], "", 5, 6, 7, 0, 0, "", 0, 0)
    receipt = build_receipt(batch, "gen-9")
    assert receipt["index"] == 9 and receipt["root"] == root and receipt["depth"] == 7
    steps = merkle.proof_from_json(receipt["proof"])
    assert merkle.verify_generation("gen-9", steps, bytes.fromhex(root))
    assert not merkle.verify_generation("gen-8", steps, bytes.fromhex(root))
    assert COMMITMENT_LABEL == 1967
