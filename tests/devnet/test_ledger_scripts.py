"""Native scripts (sig, all, any, at-least, time locks) for minting and spending; metadata; refusals."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import cbor2
import pytest
from pycardano import (
    Address,
    AuxiliaryData,
    InvalidBefore,
    InvalidHereAfter,
    Metadata,
    MultiAsset,
    PlutusV2Script,
    ScriptAll,
    ScriptAny,
    ScriptNofK,
    ScriptPubkey,
    Transaction,
    TransactionBuilder,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    UTxO,
    Value,
)
from pycardano.hash import AuxiliaryDataHash, TransactionId

from devnet.chain import Chain
from tests.devnet.ledger_support import (
    InProcessContext,
    address,
    make_chain,
    rejection,
    sign,
    signing_key,
    utxo_of,
)
from tests.devnet.test_ledger_rules import assert_shape, payment


@pytest.fixture
def chain() -> Chain:
    return make_chain()


def key_hash(chain: Chain, index: int) -> Any:
    return signing_key(chain, index).to_verification_key().hash()


def mint_tx(chain: Chain, script: Any, quantity: int, signers: list[int], **fields: Any) -> Transaction:
    """Key 0 pays itself, minting (or burning) ``quantity`` of TOKEN under ``script``."""
    policy = script.hash()
    builder = TransactionBuilder(InProcessContext(chain))
    builder.add_input_address(address(chain))
    builder.mint = MultiAsset.from_primitive({policy.payload: {b"TOKEN": quantity}})
    builder.native_scripts = [script]
    if quantity > 0:
        builder.add_output(TransactionOutput(address(chain), Value(2_000_000, copy.deepcopy(builder.mint))))
    for name, value in fields.items():
        setattr(builder, name, value)
    keys = [signing_key(chain, i) for i in signers]
    if len(signers) > 1:  # pycardano drops witnesses it cannot see a need for (e.g. inside at-least)
        builder.required_signers = [key.to_verification_key().hash() for key in keys]
    return builder.build_and_sign(keys, change_address=address(chain))


def token_total(chain: Chain, policy: str) -> int:
    return sum(out.assets.get(policy, {}).get(b"TOKEN".hex(), 0) for out in chain.utxo.values())


def test_mint_then_burn_under_a_signature_policy(chain: Chain) -> None:
    script = ScriptPubkey(key_hash(chain, 0))
    policy = script.hash().payload.hex()
    chain.submit(mint_tx(chain, script, 100, [0]).to_cbor())
    chain.produce_blocks(1)
    assert token_total(chain, policy) == 100
    chain.submit(mint_tx(chain, script, -40, [0]).to_cbor())
    chain.produce_blocks(1)
    assert token_total(chain, policy) == 60


def test_native_script_failure_3103(chain: Chain) -> None:
    script = ScriptPubkey(key_hash(chain, 2))  # key 2 never signs
    error = rejection(chain, mint_tx(chain, script, 5, [0]))
    assert error.code == 3103
    assert error.data == {"failingNativeScripts": [script.hash().payload.hex()]}
    assert_shape(error)


@pytest.mark.parametrize(
    ("clauses", "signers", "ok"),
    [
        (lambda k: ScriptAll([ScriptPubkey(k[0]), ScriptPubkey(k[1])]), [0, 1], True),
        (lambda k: ScriptAll([ScriptPubkey(k[0]), ScriptPubkey(k[1])]), [0], False),
        (lambda k: ScriptAny([ScriptPubkey(k[1]), ScriptPubkey(k[2])]), [0, 2], True),
        (lambda k: ScriptAny([ScriptPubkey(k[1]), ScriptPubkey(k[2])]), [0], False),
        (lambda k: ScriptNofK(2, [ScriptPubkey(k[0]), ScriptPubkey(k[1]), ScriptPubkey(k[2])]), [0, 2], True),
        (lambda k: ScriptNofK(2, [ScriptPubkey(k[0]), ScriptPubkey(k[1]), ScriptPubkey(k[2])]), [0], False),
    ],
)
def test_all_any_at_least(chain: Chain, clauses: Any, signers: list[int], ok: bool) -> None:
    script = clauses([key_hash(chain, i) for i in range(3)])
    tx = mint_tx(chain, script, 1, signers)
    if ok:
        chain.submit(tx.to_cbor())
    else:
        assert rejection(chain, tx).data == {"failingNativeScripts": [script.hash().payload.hex()]}


def test_time_locks(chain: Chain) -> None:
    chain.produce_blocks(1)  # the tip to the wall clock (slot 1000): the mempool validates at tip + 1
    now = chain.mempool_slot()
    before = ScriptAll([ScriptPubkey(key_hash(chain, 0)), InvalidHereAfter(now + 100)])  # "before"
    after = ScriptAll([ScriptPubkey(key_hash(chain, 0)), InvalidBefore(now - 100)])  # "after"
    # "before" needs the tx's upper bound at or under the lock; "after" needs its lower bound at or over it
    chain.submit(mint_tx(chain, before, 1, [0], ttl=now + 50).to_cbor())
    assert rejection(chain, mint_tx(chain, before, 1, [0], ttl=now + 500)).code == 3103
    assert rejection(chain, mint_tx(chain, before, 1, [0])).code == 3103  # no upper bound at all
    chain.submit(mint_tx(chain, after, 1, [0], validity_start=now - 50).to_cbor())
    assert rejection(chain, mint_tx(chain, after, 1, [0], validity_start=now - 500)).code == 3103


def test_missing_script_3102_and_extraneous_script_3104(chain: Chain) -> None:
    script = ScriptPubkey(key_hash(chain, 0))
    tx = mint_tx(chain, script, 5, [0])
    missing = sign(tx.transaction_body, [signing_key(chain)])  # the witness set drops the script
    error = rejection(chain, missing)
    assert (error.code, error.data) == (3102, {"missingScripts": [script.hash().payload.hex()]})
    assert_shape(error)
    extra = ScriptPubkey(key_hash(chain, 1))
    plain = payment(chain)
    error = rejection(chain, sign(plain.transaction_body, [signing_key(chain)], native_scripts=[extra]))
    assert (error.code, error.data) == (3104, {"extraneousScripts": [extra.hash().payload.hex()]})
    assert_shape(error)


def test_a_foreign_policy_cannot_be_minted_without_its_script(chain: Chain) -> None:
    tx = payment(chain)
    body = copy.deepcopy(tx.transaction_body)
    body.mint = MultiAsset.from_primitive({b"\xab" * 28: {b"FAKE": 1}})
    assert rejection(chain, sign(body, [signing_key(chain)])).code == 3102


def test_spending_from_a_native_script_address(chain: Chain) -> None:
    script = ScriptAll([ScriptPubkey(key_hash(chain, 0)), ScriptPubkey(key_hash(chain, 1))])
    script_address = Address(script.hash(), network=chain_network(chain))
    lock = payment(chain, lovelace=10_000_000)
    body = copy.deepcopy(lock.transaction_body)
    body.outputs[0].address = script_address
    locked = sign(body, [signing_key(chain)])
    chain.submit(locked.to_cbor())
    chain.produce_blocks(1)

    def spend(signers: list[int]) -> Transaction:
        builder = TransactionBuilder(InProcessContext(chain))
        ((ref, out),) = chain.spendable_at(bytes(script_address))
        builder.add_input(
            UTxO(
                TransactionInput(TransactionId(bytes.fromhex(ref.tx_id)), ref.index),
                TransactionOutput.from_cbor(out.raw),
            )
        )
        builder.add_input(utxo_of(chain, 0))
        builder.required_signers = [key_hash(chain, i) for i in signers]
        builder.native_scripts = [script]
        return builder.build_and_sign([signing_key(chain, i) for i in signers], change_address=address(chain))

    error = rejection(chain, spend([0]))
    assert (error.code, error.data) == (3103, {"failingNativeScripts": [script.hash().payload.hex()]})
    chain.submit(spend([0, 1]).to_cbor())


def chain_network(chain: Chain) -> Any:
    from pycardano import Network

    return Network.TESTNET if chain.genesis.network_id == 0 else Network.MAINNET


def test_metadata_hash_rules(chain: Chain) -> None:
    metadata = AuxiliaryData(Metadata({674: {"msg": ["hello"]}}))
    good = payment(chain, auxiliary_data=metadata)
    computed = metadata.hash().payload.hex()
    body = copy.deepcopy(good.transaction_body)
    body.auxiliary_data_hash = None
    error = rejection(chain, sign(body, [signing_key(chain)], auxiliary_data=metadata))
    assert (error.code, error.data) == (3105, {"metadata": {"hash": computed}})
    assert_shape(error)
    no_data = sign(good.transaction_body, [signing_key(chain)])
    error = rejection(chain, no_data)
    assert (error.code, error.data) == (3106, {"metadata": {"hash": computed}})
    assert_shape(error)
    other = AuxiliaryData(Metadata({674: {"msg": ["tampered"]}}))
    error = rejection(chain, sign(good.transaction_body, [signing_key(chain)], auxiliary_data=other))
    assert error.code == 3107
    assert error.data == {"provided": {"hash": computed}, "computed": {"hash": other.hash().payload.hex()}}
    assert_shape(error)
    accepted = chain.submit(good.to_cbor())
    assert accepted.metadata == {674: {"msg": ["hello"]}}


def test_oversized_metadatum_3108(chain: Chain) -> None:
    aux_raw = cbor2.dumps({1: "x" * 65})  # pycardano itself refuses to build this
    tx = payment(chain)
    body = copy.deepcopy(tx.transaction_body)
    body.auxiliary_data_hash = AuxiliaryDataHash(hashlib.blake2b(aux_raw, digest_size=32).digest())
    raw = sign(body, [signing_key(chain)]).to_cbor()
    assert raw.endswith(b"\xf6")
    error = rejection(chain, raw[:-1] + aux_raw)
    assert error.code == 3108 and error.data is None
    assert_shape(error)


def test_plutus_is_refused_clearly(chain: Chain) -> None:
    tx = payment(chain)
    witnesses = TransactionWitnessSet(
        vkey_witnesses=tx.transaction_witness_set.vkey_witnesses,
        plutus_v2_script=[PlutusV2Script(b"\x4e\x4d\x01\x00\x00\x33\x22\x22\x20\x05\x12\x00\x12\x00\x11")],
    )
    error = rejection(chain, Transaction(tx.transaction_body, witnesses))
    assert error.code == 3997
    assert "Plutus" in error.message and "Plutus V2 scripts" in error.data["error"]
    assert_shape(error)
    assert chain.evaluate(payment(chain).to_cbor()) == []
