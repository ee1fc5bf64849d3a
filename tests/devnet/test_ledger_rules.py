"""Each modelled ledger rule, violated by a real (pycardano-built) transaction: the code and the data shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pycardano import (
    Address,
    AuxiliaryData,
    Metadata,
    Network,
    Transaction,
    TransactionBuilder,
    TransactionInput,
    TransactionOutput,
    UTxO,
    Value,
)
from pycardano.hash import TransactionId

from devnet.chain import Chain, LedgerRejection
from tests.devnet.ledger_support import (
    InProcessContext,
    address,
    make_chain,
    output_json_of,
    rejection,
    sign,
    signing_key,
    utxo_of,
)
from tests.devnet.schemas import validate_ogmios


@pytest.fixture
def chain() -> Chain:
    return make_chain()


def payment(chain: Chain, lovelace: int = 5_000_000, sender: int = 0, receiver: int = 1, **fields: Any) -> Transaction:
    builder = TransactionBuilder(InProcessContext(chain))
    builder.add_input(utxo_of(chain, sender))
    builder.add_output(TransactionOutput(address(chain, receiver), lovelace))
    for name, value in fields.items():
        setattr(builder, name, value)
    return builder.build_and_sign([signing_key(chain, sender)], change_address=address(chain, sender))


def mutated(tx: Transaction, keys: list[Any], **changes: Any) -> Transaction:
    body = copy.deepcopy(tx.transaction_body)
    for name, value in changes.items():
        setattr(body, name, value)
    return sign(body, keys, auxiliary_data=tx.auxiliary_data)


def assert_shape(error: LedgerRejection) -> None:
    """The error is a valid Ogmios v6 SubmitTransaction error response."""
    response = {"jsonrpc": "2.0", "method": "submitTransaction", "error": error.to_error(), "id": None}
    validate_ogmios("SubmitTransactionResponse", response)


def test_valid_payment_is_accepted_and_confirmed(chain: Chain) -> None:
    tx = payment(chain)
    accepted = chain.submit(tx.to_cbor())
    assert accepted.id == str(tx.id)
    block = chain.produce_blocks(1)[0]
    assert [t.id for t in block.transactions] == [accepted.id]
    assert chain.utxo[accepted.inputs[0].__class__(accepted.id, 0)].lovelace == 5_000_000


def test_unknown_input_3117(chain: Chain) -> None:
    tx = payment(chain)
    ghost = TransactionInput(TransactionId(b"\x11" * 32), 3)
    error = rejection(chain, mutated(tx, [signing_key(chain)], inputs=[ghost]))
    assert error.code == 3117
    assert error.data == {"unknownOutputReferences": [{"transaction": {"id": "11" * 32}, "index": 3}]}
    assert_shape(error)


def test_already_spent_input_3117(chain: Chain) -> None:
    tx = payment(chain)
    chain.submit(tx.to_cbor())
    spent = tx.transaction_body.inputs[0]
    expected = {"unknownOutputReferences": [{"transaction": {"id": spent.transaction_id.payload.hex()},
                                             "index": spent.index}]}
    assert rejection(chain, tx).data == expected  # resubmitted while in the mempool
    outputs = copy.deepcopy(tx.transaction_body.outputs)
    outputs[1].amount = Value(outputs[1].amount.coin - 1)
    double_spend = mutated(tx, [signing_key(chain)], outputs=outputs, fee=tx.transaction_body.fee + 1)
    assert rejection(chain, double_spend).data == expected  # another tx spending the same output
    chain.produce_blocks(1)
    assert rejection(chain, tx).data == expected  # and once confirmed


def test_value_not_conserved_3123(chain: Chain) -> None:
    tx = payment(chain)
    body = tx.transaction_body
    outputs = copy.deepcopy(body.outputs)
    outputs[0].amount = Value(outputs[0].amount.coin + 1)
    error = rejection(chain, mutated(tx, [signing_key(chain)], outputs=outputs))
    assert error.code == 3123
    consumed = utxo_of(chain).output.amount.coin
    assert error.data == {
        "valueConsumed": {"ada": {"lovelace": consumed}},
        "valueProduced": {"ada": {"lovelace": consumed + 1}},
    }
    assert_shape(error)


def test_fee_too_small_3122(chain: Chain) -> None:
    tx = payment(chain)
    body = tx.transaction_body
    outputs = copy.deepcopy(body.outputs)
    outputs[1].amount = Value(outputs[1].amount.coin + body.fee - 1000)
    cheap = mutated(tx, [signing_key(chain)], outputs=outputs, fee=1000)
    error = rejection(chain, cheap)
    # Conway measures [body, witnesses, auxiliary data] without is_valid (Cardano.Ledger.Alonzo.Tx
    # toCBORForSizeComputation): one byte less than the submitted CBOR.
    size = len(cheap.to_cbor()) - 1
    assert error.code == 3122
    assert error.data == {"minimumRequiredFee": {"ada": {"lovelace": 44 * size + 155381}},
                          "providedFee": {"ada": {"lovelace": 1000}}}
    assert_shape(error)


def test_missing_signature_3101(chain: Chain) -> None:
    tx = payment(chain)
    error = rejection(chain, mutated(tx, []))
    assert error.code == 3101
    assert error.data == {"missingSignatories": [chain.genesis.keys[0].key_hash.hex()]}
    assert_shape(error)


def test_required_signer_must_sign_3101(chain: Chain) -> None:
    tx = payment(chain)
    other = signing_key(chain, 2).to_verification_key().hash()
    error = rejection(chain, mutated(tx, [signing_key(chain)], required_signers=[other]))
    assert (error.code, error.data) == (3101, {"missingSignatories": [other.payload.hex()]})


def test_invalid_signature_3100(chain: Chain) -> None:
    tx = payment(chain)
    forged = copy.deepcopy(tx)
    witness = forged.transaction_witness_set.vkey_witnesses[0]
    witness.signature = signing_key(chain).sign(b"some other body")
    error = rejection(chain, forged)
    assert error.code == 3100
    assert error.data == {"invalidSignatories": [chain.genesis.keys[0].vkey.hex()]}
    assert_shape(error)


def test_outside_validity_interval_3118(chain: Chain) -> None:
    chain.produce_blocks(1)  # the tip moves to the wall clock's slot (1000): the mempool checks tip + 1
    expired = payment(chain, ttl=900)
    error = rejection(chain, expired)
    assert error.code == 3118
    assert error.data == {"validityInterval": {"invalidAfter": 900}, "currentSlot": 1001}
    assert_shape(error)
    early = payment(chain, validity_start=5000, ttl=6000)
    error = rejection(chain, early)
    assert error.data == {"validityInterval": {"invalidBefore": 5000, "invalidAfter": 6000},
                          "currentSlot": 1001}
    chain.submit(payment(chain, validity_start=900, ttl=2000).to_cbor())  # inside: accepted


def test_transaction_too_large_3119(chain: Chain) -> None:
    tx = payment(chain)
    metadata = AuxiliaryData(Metadata({674: {"msg": ["x" * 60] * 300}}))
    body = copy.deepcopy(tx.transaction_body)
    body.auxiliary_data_hash = metadata.hash()
    big = sign(body, [signing_key(chain)], auxiliary_data=metadata)
    size = len(big.to_cbor()) - 1  # without is_valid, as Conway measures (see test_fee_too_small_3122)
    assert size > 16384
    error = rejection(chain, big)
    assert error.code == 3119  # TxTooLarge outranks the fee it also fails
    assert error.data == {"measuredTransactionSize": {"bytes": size}, "maximumTransactionSize": {"bytes": 16384}}
    assert_shape(error)


def test_output_below_min_utxo_3125(chain: Chain) -> None:
    tx = payment(chain)
    outputs = copy.deepcopy(tx.transaction_body.outputs)
    outputs[1].amount = Value(outputs[1].amount.coin + outputs[0].amount.coin - 800_000)
    outputs[0].amount = Value(800_000)
    error = rejection(chain, mutated(tx, [signing_key(chain)], outputs=outputs))
    assert error.code == 3125
    minimum = (160 + len(outputs[0].to_cbor())) * 4310
    assert error.data == {"insufficientlyFundedOutputs": [
        {"output": output_json_of(outputs[0]), "minimumRequiredValue": {"ada": {"lovelace": minimum}}}
    ]}
    assert_shape(error)


def test_network_mismatch_3124(chain: Chain) -> None:
    mainnet = Address(signing_key(chain, 1).to_verification_key().hash(), network=Network.MAINNET)
    tx = payment(chain)
    outputs = copy.deepcopy(tx.transaction_body.outputs)
    outputs[0].address = mainnet
    error = rejection(chain, mutated(tx, [signing_key(chain)], outputs=outputs))
    assert error.code == 3124
    assert error.data == {"expectedNetwork": "testnet", "discriminatedType": "address",
                          "invalidEntities": [str(mainnet)]}
    assert_shape(error)
    error = rejection(chain, mutated(tx, [signing_key(chain)], network_id=Network.MAINNET))
    assert (error.code, error.data) == (3124, {"expectedNetwork": "testnet", "discriminatedType": "transaction"})
    assert_shape(error)


def test_empty_input_set_3121(chain: Chain) -> None:
    tx = payment(chain)
    error = rejection(chain, mutated(tx, [signing_key(chain)], inputs=[]))
    assert error.code == 3121
    assert error.data is None
    assert_shape(error)


def test_lowest_priority_number_wins(chain: Chain) -> None:
    tx = payment(chain)
    ghost = TransactionInput(TransactionId(b"\x22" * 32), 0)
    # unknown input (4) + fee too small (19) + not conserved (20) -> 3117
    assert rejection(chain, mutated(tx, [signing_key(chain)], inputs=[ghost], fee=10)).code == 3117
    # expired (2) + unknown input (4) -> 3118
    assert rejection(chain, mutated(tx, [signing_key(chain)], inputs=[ghost], ttl=1)).code == 3118  # tip + 1 = 1
    # missing signature (9) + fee too small (19) -> 3101
    assert rejection(chain, mutated(tx, [], fee=10)).code == 3101
    # fee too small (19) + value not conserved (20) -> 3122
    assert rejection(chain, mutated(tx, [signing_key(chain)], fee=10)).code == 3122


def test_value_too_large_3120(chain: Chain) -> None:
    policy = "cd" * 28
    chain.fund(chain.genesis.keys[0].address, 5_000_000, {f"{policy}.{i:02x}": 1 for i in range(3)})
    chain.produce_blocks(1)
    builder = TransactionBuilder(InProcessContext(chain))
    for ref, out in chain.spendable_at(chain.genesis.keys[0].address_bytes):
        if out.assets:
            builder.add_input(UTxO(TransactionInput(TransactionId(bytes.fromhex(ref.tx_id)), ref.index),
                                   TransactionOutput.from_cbor(out.raw)))
    builder.add_input(utxo_of(chain))
    tx = builder.build_and_sign([signing_key(chain)], change_address=address(chain))
    chain.params = chain.params.replace(max_value_size_bytes=40)  # after building: pycardano would split
    error = rejection(chain, tx)
    assert error.code == 3120
    assert error.data["excessivelyLargeOutputs"][0]["value"][policy] == {"00": 1, "01": 1, "02": 1}
    assert_shape(error)
