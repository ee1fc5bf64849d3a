"""The witness splicer: original bytes kept, vkeys de-duplicated and verified, foreign/extra refused."""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from common.cardano import AssetId, Value
from gateway.web3.address import parse_address
from gateway.web3.cborspan import CborSpanError, array_items
from gateway.web3.errors import InvalidWitnessSet
from gateway.web3.splice import splice_witnesses
from gateway.web3.txbuild import FeeParams, QuoteTx, WalletUtxo, build_quote_tx
from tests.gateway.web3.wallet import TestWallet

PARAMS = FeeParams(min_fee_a=44, min_fee_b=155381, coins_per_utxo_byte=4310, max_tx_size=16384)
ASSET = AssetId("ab" * 28, b"CREATE".hex())


def _quote(wallet: TestWallet) -> QuoteTx:
    address = parse_address(wallet.bech32, 0)
    utxo = WalletUtxo("11" * 32, 0, address, Value(20_000_000, {ASSET: 3}))
    return build_quote_tx([utxo], pay_to=parse_address(TestWallet().bech32, 0), change_to=address, asset=ASSET,
                          price=1, params=PARAMS, ttl_slot=99, network_id=0, quote_id="ab" * 16)


def _splice(tx: QuoteTx, answer: str) -> bytes:
    return splice_witnesses(tx.cbor, answer, tx_id=tx.tx_id, required_signers=tx.signers).cbor


@pytest.fixture
def wallet() -> TestWallet:
    return TestWallet()


def test_body_and_auxiliary_bytes_kept_and_witness_added(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    signed = _splice(tx, wallet.sign_tx(tx.tx_id))
    before, after = array_items(tx.cbor), array_items(signed)
    assert after[0] == before[0] and after[2] == before[2] and after[3] == before[3]
    assert hashlib.blake2b(after[0], digest_size=32).hexdigest() == tx.tx_id
    assert cbor2.loads(after[1]) == {0: [wallet.witness(tx.tx_id)]}


@pytest.mark.parametrize("form", ["pycardano", "plain", "repeated"])
def test_wallet_witness_set_forms(wallet: TestWallet, form: str) -> None:
    tx = _quote(wallet)
    answer = {"pycardano": wallet.sign_tx_pycardano(tx.tx_id), "plain": wallet.sign_tx(tx.tx_id, set_tag=False),
              "repeated": wallet.sign_tx(tx.tx_id, set_tag=False, repeat=3)}[form]
    assert cbor2.loads(array_items(_splice(tx, answer))[1]) == {0: [wallet.witness(tx.tx_id)]}


def test_full_signed_tx_with_identical_body_accepted(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    parts = array_items(tx.cbor)
    full = b"\x84" + parts[0] + bytes.fromhex(wallet.sign_tx(tx.tx_id)) + parts[2] + parts[3]
    assert array_items(_splice(tx, full.hex()))[0] == parts[0]


def test_re_encoded_body_refused(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    parts = array_items(tx.cbor)
    body = cbor2.loads(parts[0])
    reencoded = cbor2.dumps(dict(sorted(body.items(), reverse=True)))  # same content, other key order
    assert cbor2.loads(reencoded) == body and reencoded != parts[0]
    full = b"\x84" + reencoded + bytes.fromhex(wallet.sign_tx(tx.tx_id)) + parts[2] + parts[3]
    with pytest.raises(InvalidWitnessSet, match="byte for byte"):
        _splice(tx, full.hex())


def test_extra_output_refused(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    parts = array_items(tx.cbor)
    body = cbor2.loads(parts[0])
    body[1].append([bytes(TestWallet().raw), 5_000_000])
    evil = cbor2.dumps(body)
    evil_id = hashlib.blake2b(evil, digest_size=32).hexdigest()
    full = b"\x84" + evil + bytes.fromhex(wallet.sign_tx(evil_id)) + parts[2] + parts[3]
    with pytest.raises(InvalidWitnessSet, match="body"):
        _splice(tx, full.hex())


def test_foreign_key_refused(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    stranger = TestWallet()
    answer = cbor2.dumps({0: [wallet.witness(tx.tx_id), stranger.witness(tx.tx_id)]}).hex()
    with pytest.raises(InvalidWitnessSet, match="none of the inputs needs"):
        _splice(tx, answer)


def test_signature_over_another_body_refused(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    with pytest.raises(InvalidWitnessSet, match="does not verify"):
        _splice(tx, wallet.sign_tx("00" * 32))


def test_missing_signature_refused(wallet: TestWallet) -> None:
    tx = _quote(wallet)
    with pytest.raises(InvalidWitnessSet, match="missing signatures"):
        _splice(tx, cbor2.dumps({0: []}).hex())


@pytest.mark.parametrize("answer", [
    "", "zz", "a1", cbor2.dumps([1, 2]).hex(), cbor2.dumps({1: [b"script"]}).hex(),
    cbor2.dumps({0: [[b"k" * 32, b"s" * 63]]}).hex(), cbor2.dumps({0: "x"}).hex(), cbor2.dumps(7).hex(),
    "ff" * 70_000,
])
def test_malformed_witness_sets_refused(wallet: TestWallet, answer: str) -> None:
    with pytest.raises(InvalidWitnessSet):
        _splice(_quote(wallet), answer)


def test_span_nesting_bounded_for_wallet_input() -> None:
    assert len(array_items(b"\x81" * 64 + b"\x00")) == 1
    with pytest.raises(CborSpanError, match="nested too deeply"):
        array_items(b"\x81" * 65 + b"\x00")
