"""In-process helpers for the ledger tests: a Chain with a fixed clock and a pycardano ChainContext over it,
so real transactions are built and signed by a third-party library (pycardano)."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from pycardano import (
    Address,
    ChainContext,
    GenesisParameters,
    Network,
    PaymentSigningKey,
    ProtocolParameters,
    Transaction,
    TransactionBody,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    UTxO,
    VerificationKeyWitness,
)
from pycardano.hash import TransactionId

from devnet.chain import Chain, LedgerRejection
from devnet.genesis import Genesis
from devnet.ledger.decode import decode_output
from devnet.ledger.params import ProtocolParameters as DevnetParams

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW_SLOT = 1000  # the fixed clock sits this many slots after system start


class InProcessContext(ChainContext):
    """Enough of pycardano's ChainContext for TransactionBuilder, reading the devnet Chain directly."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    @property
    def protocol_param(self) -> ProtocolParameters:
        p = self.chain.params
        return ProtocolParameters(
            min_fee_constant=p.min_fee_constant_lovelace, min_fee_coefficient=p.min_fee_coefficient,
            max_block_size=p.max_block_body_size_bytes, max_tx_size=p.max_transaction_size_bytes,
            max_block_header_size=p.max_block_header_size_bytes, key_deposit=2_000_000,
            pool_deposit=500_000_000, pool_influence=Fraction(3, 10), monetary_expansion=Fraction(3, 1000),
            treasury_expansion=Fraction(1, 5), decentralization_param=Fraction(0), extra_entropy="",
            protocol_major_version=10, protocol_minor_version=0, min_utxo=0, min_pool_cost=170_000_000,
            price_mem=Fraction(577, 10000), price_step=Fraction(721, 10000000), max_tx_ex_mem=14_000_000,
            max_tx_ex_steps=10_000_000_000, max_block_ex_mem=62_000_000, max_block_ex_steps=20_000_000_000,
            max_val_size=p.max_value_size_bytes, collateral_percent=150, max_collateral_inputs=3,
            coins_per_utxo_word=0, coins_per_utxo_byte=p.min_utxo_deposit_coefficient, cost_models={},
        )  # fmt: skip

    @property
    def genesis_param(self) -> GenesisParameters:
        g = self.chain.genesis
        return GenesisParameters(
            active_slots_coefficient=Fraction(1), update_quorum=5, max_lovelace_supply=45 * 10**15,
            network_magic=g.network_magic, epoch_length=g.epoch_length, system_start=int(g.system_start_s),
            slots_per_kes_period=129600, slot_length=1, max_kes_evolutions=62, security_param=g.security_param,
        )  # fmt: skip

    @property
    def network(self) -> Network:
        return Network.TESTNET

    @property
    def epoch(self) -> int:
        return self.chain.epoch()

    @property
    def last_block_slot(self) -> int:
        return self.chain.current_slot()

    def _utxos(self, address: str) -> list[UTxO]:
        raw = bytes(Address.from_primitive(address))
        return [
            UTxO(TransactionInput(TransactionId(bytes.fromhex(ref.tx_id)), ref.index),
                 TransactionOutput.from_cbor(out.raw))
            for ref, out in self.chain.spendable_at(raw)
        ]

    def submit_tx_cbor(self, cbor: bytes | str) -> None:
        self.chain.submit(bytes.fromhex(cbor) if isinstance(cbor, str) else cbor)


def make_chain(slot: int = NOW_SLOT, **params: Any) -> Chain:
    """A fresh devnet chain whose wall clock stands still at ``slot``."""
    genesis = Genesis(seed="ledger-tests", system_start=START)
    clock_s = START.timestamp() + slot
    return Chain.create(genesis, DevnetParams().replace(**params), clock=lambda: clock_s)


def signing_key(chain: Chain, index: int = 0) -> PaymentSigningKey:
    return PaymentSigningKey.from_cbor(chain.genesis.keys[index].signing_key_cbor_hex())


def address(chain: Chain, index: int = 0) -> Address:
    return Address.from_primitive(chain.genesis.keys[index].address)


def utxo_of(chain: Chain, index: int = 0) -> UTxO:
    """The genesis key's richest spendable output."""
    ref, out = max(chain.spendable_at(chain.genesis.keys[index].address_bytes), key=lambda p: p[1].lovelace)
    return UTxO(TransactionInput(TransactionId(bytes.fromhex(ref.tx_id)), ref.index),
                TransactionOutput.from_cbor(out.raw))


def sign(body: TransactionBody, keys: list[PaymentSigningKey], *, native_scripts: list[Any] | None = None,
         auxiliary_data: Any = None) -> Transaction:
    """A transaction over ``body`` with a vkey witness from each key."""
    digest = body.hash()
    witnesses = TransactionWitnessSet(
        vkey_witnesses=[VerificationKeyWitness(k.to_verification_key(), k.sign(digest)) for k in keys] or None,
        native_scripts=native_scripts or None,
    )
    return Transaction(body, witnesses, auxiliary_data=auxiliary_data)


def rejection(chain: Chain, tx: Transaction | bytes) -> LedgerRejection:
    """Submit and return the rejection (fails the test if the tx is accepted)."""
    raw = tx if isinstance(tx, bytes) else tx.to_cbor()
    with pytest.raises(LedgerRejection) as info:
        chain.submit(raw)
    return info.value


def output_json_of(out: TransactionOutput) -> dict[str, Any]:
    from devnet.values import output_to_ogmios

    return output_to_ogmios(decode_output(out.to_cbor()))
