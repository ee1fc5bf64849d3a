"""The quote tx builder: exact asset and amount, change, exact fee and min-UTxO, metadata, 402/422."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from pycardano import Transaction

from common.cardano import AssetId, Value
from gateway.web3.address import parse_address
from gateway.web3.errors import InsufficientCreate, QuoteNotCoverable
from gateway.web3.splice import splice_witnesses
from gateway.web3.txbuild import (
    QUOTE_LABEL,
    FeeParams,
    WalletUtxo,
    build_quote_tx,
    min_utxo_lovelace,
    payment_ref,
)
from tests.gateway.web3.wallet import TestWallet

PARAMS = FeeParams(min_fee_a=44, min_fee_b=155381, coins_per_utxo_byte=4310, max_tx_size=16384)
ASSET = AssetId("ab" * 28, b"CREATE".hex())
FAKE = AssetId("cd" * 28, b"CREATE".hex())
QUOTE = "0123456789abcdef0123456789abcdef"


def _utxo(wallet: TestWallet, n: int, lovelace: int, assets: dict[AssetId, int] | None = None) -> WalletUtxo:
    return WalletUtxo(hashlib.sha256(bytes([n])).hexdigest(), n % 3, parse_address(wallet.bech32, 0),
                      Value(lovelace, assets or {}))


def _build(wallet: TestWallet, utxos: list[WalletUtxo], price: int = 1):
    pay_to = parse_address(TestWallet().bech32, 0)
    tx = build_quote_tx(utxos, pay_to=pay_to, change_to=parse_address(wallet.bech32, 0), asset=ASSET, price=price,
                        params=PARAMS, ttl_slot=1234, network_id=0, quote_id=QUOTE)
    return tx, pay_to


def test_pays_exactly_the_price_with_change_and_exact_fee() -> None:
    wallet = TestWallet()
    utxos = [_utxo(wallet, 1, 2_000_000, {ASSET: 5, FAKE: 7}), _utxo(wallet, 2, 10_000_000)]
    tx, pay_to = _build(wallet, utxos)
    decoded = Transaction.from_cbor(tx.cbor)  # a third party reads it as a valid Conway tx
    body = decoded.transaction_body
    assert str(body.id) == tx.tx_id == hashlib.blake2b(cbor2.dumps(cbor2.loads(tx.cbor)[0]), digest_size=32).hexdigest()
    pay, change = body.outputs
    assert pay.address.to_primitive() == pay_to.raw
    policy_assets = {(bytes(p.payload).hex(), bytes(n.payload).hex()): q
                     for p, names in pay.amount.multi_asset.items() for n, q in names.items()}
    assert policy_assets == {(ASSET.policy_id, ASSET.asset_name): 1}
    assert pay.amount.coin == min_utxo_lovelace(pay_to.raw, Value(0, {ASSET: 1}), PARAMS.coins_per_utxo_byte)
    change_assets = {(bytes(p.payload).hex(), bytes(n.payload).hex()): q
                     for p, names in change.amount.multi_asset.items() for n, q in names.items()}
    assert change_assets == {(ASSET.policy_id, ASSET.asset_name): 4, (FAKE.policy_id, FAKE.asset_name): 7}
    total_in = sum(u.value.lovelace for u in utxos if u.out_ref in tx.inputs)
    assert total_in == pay.amount.coin + change.amount.coin + body.fee  # conserved
    assert body.ttl == 1234 and body.network_id is not None
    assert decoded.auxiliary_data is not None
    metadata = cbor2.loads(cbor2.dumps(cbor2.loads(tx.cbor)[3]))
    assert metadata[QUOTE_LABEL] == {"quote": payment_ref(QUOTE)}
    assert QUOTE not in repr(metadata)  # the chain is public; the quote id stays the artist's
    # the fee is exactly minFeeA x signed size + minFeeB for a tag-258 witness set
    signed = splice_witnesses(tx.cbor, wallet.sign_tx(tx.tx_id), tx_id=tx.tx_id, required_signers=tx.signers)
    assert body.fee == PARAMS.min_fee_a * (len(signed.cbor) + 3) + PARAMS.min_fee_b


def test_asset_utxo_alone_covers_when_it_has_enough_ada() -> None:
    wallet = TestWallet()
    tx, _ = _build(wallet, [_utxo(wallet, 1, 50_000_000, {ASSET: 1}), _utxo(wallet, 2, 99_000_000)])
    assert len(tx.inputs) == 1


def test_ada_utxos_added_for_fee_and_min_utxo() -> None:
    wallet = TestWallet()
    utxos = [_utxo(wallet, 1, 1_200_000, {ASSET: 1}), _utxo(wallet, 2, 1_000_000), _utxo(wallet, 3, 3_000_000)]
    tx, _ = _build(wallet, utxos)
    assert len(tx.inputs) == 2 and utxos[2].out_ref in tx.inputs  # the largest ADA-only UTxO first


def test_fake_token_with_the_same_name_is_not_create() -> None:
    wallet = TestWallet()
    with pytest.raises(InsufficientCreate) as info:
        _build(wallet, [_utxo(wallet, 1, 50_000_000, {FAKE: 100})])
    assert info.value.status == 402
    assert info.value.body()["error"] == "Insufficient CREATE tokens. Please purchase more to continue."


def test_price_above_the_holdings_is_402() -> None:
    wallet = TestWallet()
    with pytest.raises(InsufficientCreate):
        _build(wallet, [_utxo(wallet, 1, 50_000_000, {ASSET: 2})], price=3)


def test_not_enough_ada_is_422_naming_the_missing_lovelace() -> None:
    wallet = TestWallet()
    with pytest.raises(QuoteNotCoverable) as info:
        _build(wallet, [_utxo(wallet, 1, 1_300_000, {ASSET: 1})])
    body = info.value.body()
    assert info.value.status == 422 and body["missing_lovelace"] > 0
    assert "min-UTxO" in body["error"] and "fee" in body["error"] and "getUtxos" in body["error"]


def test_script_locked_utxos_are_not_spent() -> None:
    wallet = TestWallet()
    script_addr = parse_address(bytes([0x10]) .hex() + "11" * 56, 0)  # base address, script payment part
    utxo = WalletUtxo("aa" * 32, 0, script_addr, Value(50_000_000, {ASSET: 5}))
    with pytest.raises(InsufficientCreate):
        _build(wallet, [utxo])


def test_fee_covers_the_size_when_the_change_crosses_an_integer_width() -> None:
    """Change just above 2^32 lovelace: paying the fee takes it below (a 4-byte smaller integer)."""
    wallet = TestWallet()
    pay_to = parse_address(TestWallet().bech32, 0)
    pay_lovelace = min_utxo_lovelace(pay_to.raw, Value(0, {ASSET: 1}), PARAMS.coins_per_utxo_byte)
    for extra in range(0, 200_000, 10_000):  # change - fee lands on both sides of 2^32
        utxo = _utxo(wallet, 1, 2**32 + pay_lovelace + extra, {ASSET: 1})
        tx, _ = _build(wallet, [utxo])
        signed = splice_witnesses(tx.cbor, wallet.sign_tx(tx.tx_id), tx_id=tx.tx_id, required_signers=tx.signers)
        assert tx.fee >= PARAMS.min_fee_a * (len(signed.cbor) + 3) + PARAMS.min_fee_b


def test_too_many_assets_for_one_change_output_is_422() -> None:
    wallet = TestWallet()
    junk = {AssetId(f"{i:056x}", b"JUNK".hex()): 1 for i in range(200)}
    with pytest.raises(QuoteNotCoverable, match="value limit"):
        _build(wallet, [_utxo(wallet, 1, 500_000_000, {ASSET: 1, **junk})])
