"""On-chain payment rules over a hand-built ChainTx: each rule refuses once, a valid payment passes."""

from __future__ import annotations

import dataclasses

from common.cardano import AssetId, Value
from gateway.web3.chain import ChainTx, TxOutput, TxState, TxStatus
from gateway.web3.challenge import make_challenge, nonce_of
from gateway.web3.rules import Expectation, depth_verdict, payment_problem
from gateway.web3.txbuild import payment_ref

ASSET = AssetId("ab" * 28, b"CREATE".hex())
PAY_TO = "addr_test1_treasury"
EXPECT = Expectation(quote_id="q1", pay_to=PAY_TO, asset=ASSET, price=1, expires_slot=1000)


def _tx(outputs: list[TxOutput] | None = None, quote: object = "q1", slot: int = 500) -> ChainTx:
    outputs = outputs if outputs is not None else [TxOutput(0, PAY_TO, Value(1_200_000, {ASSET: 1}))]
    ref = payment_ref(quote) if isinstance(quote, str) else quote
    metadata = {} if quote is None else {"1968": {"json": {"quote": ref}}}
    return ChainTx("aa" * 32, slot, 10, (), tuple(outputs), {}, 170_000, metadata)


def test_a_valid_payment_passes_even_hand_built() -> None:
    assert payment_problem(_tx(), EXPECT) is None
    split = [TxOutput(0, PAY_TO, Value(1_200_000, {ASSET: 1})), TxOutput(1, PAY_TO, Value(1_200_000, {ASSET: 2}))]
    assert payment_problem(_tx(split), dataclasses.replace(EXPECT, price=3)) is None


def test_same_name_under_another_policy_refused() -> None:
    fake = AssetId("cd" * 28, ASSET.asset_name)
    problem = payment_problem(_tx([TxOutput(0, PAY_TO, Value(1_200_000, {fake: 1}))]), EXPECT)
    assert problem is not None and "another policy" in problem


def test_payment_to_another_address_refused() -> None:
    problem = payment_problem(_tx([TxOutput(0, "addr_test1_other", Value(1_200_000, {ASSET: 1}))]), EXPECT)
    assert problem is not None and "another address" in problem


def test_missing_wrong_or_malformed_quote_id_refused() -> None:
    assert "no quote id" in (payment_problem(_tx(quote=None), EXPECT) or "")
    assert "no quote id" in (payment_problem(_tx(quote=17), EXPECT) or "")
    assert "another quote" in (payment_problem(_tx(quote="q2"), EXPECT) or "")


def test_included_after_expiry_refused() -> None:
    assert "expired" in (payment_problem(_tx(slot=1000), EXPECT) or "")


def test_depth_verdicts() -> None:
    assert depth_verdict(TxStatus("t", TxState.CONFIRMED, 3), 3).state == "releasable"
    assert depth_verdict(TxStatus("t", TxState.CONFIRMED, 2), 3).state == "pending"
    assert depth_verdict(TxStatus("t", TxState.MEMPOOL), 3).state == "pending"
    assert depth_verdict(TxStatus("t", TxState.ROLLED_BACK), 3).state == "rolled_back"
    assert depth_verdict(TxStatus("t", TxState.UNKNOWN), 3).state == "unknown"


def test_challenge_is_readable_and_names_everything() -> None:
    challenge = make_challenge(domain="studio.example", address="addr_test1xyz", network_id=0, ttl_s=300)
    text = bytes.fromhex(challenge.payload_hex).decode()
    for part in ("studio.example", "addr_test1xyz", "Network ID: 0", f"Nonce: {challenge.nonce}",
                 f"Expiration Time: {challenge.expires_at_iso}"):
        assert part in text
    assert nonce_of(text.encode()) == challenge.nonce
    assert nonce_of(b"\xff\xfe") is None and nonce_of(b"Nonce: nothex") is None
    assert make_challenge(domain="d", address="a", network_id=0, ttl_s=1).nonce != challenge.nonce
