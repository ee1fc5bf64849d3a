"""Conway's ledger rules and the node's mempool where the devnet used to differ (issue 16, items 1, 2, 6-8
and 10): each refusal beside its accepted neighbour, the verdict taken from the cited source
(cardano-ledger-conway-1.19.0.0, ouroboros-consensus 0.27), never from what the devnet did before."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Any

import pytest

from devnet.chain import Chain, LedgerRejection
from devnet.ledger.decode import decode_tx
from devnet.ledger.types import OutRef
from devnet.ogmios.txjson import transaction_json
from tests.devnet.conway_support import TxParts, enc, refused_at_decode, tag24
from tests.devnet.ledger_support import NOW_SLOT, make_chain


@pytest.fixture
def chain() -> Chain:
    return make_chain()


def _refused(chain: Chain, raw: bytes) -> LedgerRejection:
    with pytest.raises(LedgerRejection) as info:
        chain.submit(raw)
    return info.value


def _linear_fee(raw: bytes) -> int:
    """minFeeA * size + minFeeB, the size being [body, witnesses, aux] without is_valid (one byte less):
    Cardano.Ledger.Alonzo.Tx ``toCBORForSizeComputation`` (Conway's ``getConwayMinFeeTx`` and
    ``validateMaxTxSizeUTxO`` both measure it)."""
    return 44 * (len(raw) - 1) + 155_381


def _tier_fee(size: int) -> int:
    """Cardano.Ledger.Conway.Tx ``tierRefScriptFee`` with minFeeRefScriptCostPerByte = 15 and the ledger
    constants 25,600 bytes per tier, x1.2 per tier (Conway.PParams ppRefScriptCostStrideG/MultiplierG)."""
    price, total = Fraction(15), Fraction(0)
    while size >= 25_600:
        total, price, size = total + 25_600 * price, price * Fraction(6, 5), size - 25_600
    return math.floor(total + size * price)


def _at_fee(tx: TxParts, fee: int) -> bytes:
    tx.fee = fee
    return tx.cbor()


# -- item 1: a tx that fails at block production -----------------------------------------------------------


def test_a_tx_failing_at_block_production_is_dropped_and_the_chain_goes_on(chain: Chain) -> None:
    """A block is checked before it changes the UTxO set. Two txs spending the same output get into the
    mempool only by a bug (here: put there directly); the block takes the first, drops the second and the
    txs spending its outputs, and production goes on (it used to raise on every later tick)."""
    first, second = TxParts(chain, pay=2_000_000), TxParts(chain, pay=3_000_000)
    winner, loser = decode_tx(first.cbor()), decode_tx(second.cbor())
    chain.submit_decoded(winner)
    chain._pending.add(loser)  # what validation would never let in
    child = TxParts(chain)
    child.ref, child.in_lovelace = second.out_ref(1), second.change()
    chain._pending.add(decode_tx(child.cbor()))  # spends the loser's change
    block = chain.produce_blocks(1)[0]
    assert [t.id for t in block.transactions] == [winner.id] and not chain.mempool
    assert chain.lookup(winner.inputs[0]) is None
    follow_up = chain.submit(TxParts(chain).cbor())
    assert [t.id for t in chain.produce_blocks(1)[0].transactions] == [follow_up.id]


# -- item 2: the reference-script fee ------------------------------------------------------------------


def _script_outputs(chain: Chain, count: int, clauses: int) -> tuple[list[Any], int]:
    """``count`` outputs at key 1's address, each carrying a native script of ``clauses`` signatures
    (about 32 bytes each) as its reference script; confirmed. Returns their refs and the script size."""
    script = [1, [[0, bytes([i % 256, i // 256]) * 14] for i in range(clauses)]]
    size = len(enc(script))
    refs = []
    for _ in range(count):
        tx = TxParts(chain)
        tx.outputs = [{0: chain.genesis.keys[1].address_bytes, 1: 45_000_000, 3: tag24(enc([0, script]))}]
        tx.fee = 1_000_000
        refs.append(chain.submit(tx.cbor()).id)
    chain.produce_blocks(1)
    return [OutRef(tx_id, 0) for tx_id in refs], size


def test_reference_scripts_are_charged_by_tier(chain: Chain) -> None:
    """``getConwayMinFeeTx`` = linear fee + ``tierRefScriptFee`` over ``txNonDistinctRefScriptsSize``: the
    scripts of the reference inputs (and of the spent inputs, below), each counted once per input; the
    UTXO rule's ``FeeTooSmallUTxO`` (Ogmios 3122) refuses one lovelace less."""
    refs, size = _script_outputs(chain, 3, 280)
    assert 3 * size > 25_600  # the third script crosses into the second tier
    tx = TxParts(chain)
    tx.extra = [(enc(18), enc([[bytes.fromhex(r.tx_id), r.index] for r in refs]))]
    draft = _at_fee(tx, 1_000_000)
    minimum = _linear_fee(draft) + _tier_fee(3 * size)
    error = _refused(chain, _at_fee(tx, minimum - 1))
    assert (error.code, error.data["minimumRequiredFee"]) == (3122, {"ada": {"lovelace": minimum}})
    assert chain.submit(_at_fee(tx, minimum)).fee == minimum
    spender = TxParts(chain, key=1)  # key 1 spends one script output and references another
    spender.ref, spender.in_lovelace = refs[0], 45_000_000
    spender.extra = [(enc(18), enc([[bytes.fromhex(refs[1].tx_id), 0]]))]
    minimum = _linear_fee(_at_fee(spender, 1_000_000)) + _tier_fee(2 * size)
    assert _refused(chain, _at_fee(spender, minimum - 1)).code == 3122
    chain.submit(_at_fee(spender, minimum))


# -- item 6: the validity interval against the tip, not the clock --------------------------------------------


def test_validity_is_checked_at_tip_plus_one_not_the_wall_clock(chain: Chain) -> None:
    """ouroboros-consensus' mempool validates against the ledger state ticked to the slot after the tip;
    Conway's UTXO rule ``OutsideValidityIntervalUTxO`` (Ogmios 3118) compares the interval with that slot.
    The clock here stands at slot 1,000 while the tip is still at slot 0."""
    assert chain.tip.slot == 0 and chain.wall_slot() == NOW_SLOT
    late = TxParts(chain)
    late.extra = [(enc(8), enc(500))]  # valid from slot 500: the clock is past it, the tip is not
    error = _refused(chain, late.cbor())
    assert (error.code, error.data["currentSlot"]) == (3118, 1)
    soon = TxParts(chain)
    soon.extra = [(enc(3), enc(500))]  # valid until slot 500: valid at tip + 1, as the node says
    accepted = chain.submit(soon.cbor())
    block = chain.produce_blocks(1)[0]  # forged at slot 1,000, where it has expired
    assert block.slot == NOW_SLOT and accepted.id not in [t.id for t in block.transactions]
    assert not chain.mempool  # and it left the mempool


# -- item 7: rollbacks drop the rolled-back blocks' txs ----------------------------------------------------


def test_rollback_drops_the_blocks_txs_and_revalidates_the_mempool(chain: Chain) -> None:
    """A node switching to a fork re-validates only what is in its mempool (ouroboros-consensus
    ``Mempool`` ``syncWithLedger``); the txs of the blocks it left are gone until resubmitted. The devnet's
    ``drop_transactions=False`` re-adds them first (an option, not the node's behaviour)."""
    confirmed = chain.submit(TxParts(chain).cbor())
    chain.produce_blocks(1)
    child = TxParts(chain)  # spends the confirmed tx's change
    child.ref, child.in_lovelace = OutRef(confirmed.id, 1), confirmed.outputs[1].lovelace
    pending_child = chain.submit(child.cbor())
    independent = chain.submit(TxParts(chain, key=2).cbor())
    discarded = chain.rollback(1)
    assert [t.id for t in discarded] == [confirmed.id, pending_child.id]
    assert [t.id for t in chain.mempool] == [independent.id]
    chain.submit(confirmed.cbor)  # the submitter resubmits: accepted again
    chain.produce_blocks(1)
    assert chain.rollback(1, drop_transactions=False) == []  # the option puts both back
    assert [t.id for t in chain.mempool] == [independent.id, confirmed.id]


def test_rollback_over_the_control_api_drops_by_default(devnet: Any) -> None:
    tx_id = devnet.fund(devnet.genesis_key(0)["address"], 2_000_000)
    devnet.blocks(1)
    answer = devnet.rollback(1)
    assert answer["discarded_transaction_ids"] == [tx_id] and answer["mempool"]["transactions"] == 0


# -- item 8: extraneous witnesses, metadata depth, the measured size -----------------------------------------


def test_a_witness_script_also_given_by_reference_is_extraneous(chain: Chain) -> None:
    """Cardano.Ledger.Babbage.Rules.Utxow ``babbageMissingScripts``: scripts needed minus those provided by
    reference inputs are the ones the witness set must hold, and a witness outside them is
    ``ExtraneousScriptWitnessesUTXOW`` (Ogmios 3104), even when it is the very script the tx needs."""
    script = [0, chain.genesis.keys[0].key_hash]
    holder = TxParts(chain)
    holder.outputs = [{0: chain.genesis.keys[1].address_bytes, 1: 3_000_000, 3: tag24(enc([0, script]))}]
    ref_tx = chain.submit(holder.cbor())
    chain.produce_blocks(1)
    policy = hashlib.blake2b(b"\x00" + enc(script), digest_size=28).digest()
    mint = TxParts(chain)
    mint.outputs = [{0: mint.key.address_bytes, 1: [2_000_000, {policy: {b"A": 1}}]}]
    mint.extra = [(enc(9), enc({policy: {b"A": 1}})), (enc(18), enc([[bytes.fromhex(ref_tx.id), 0]]))]
    mint.witness_extra = {1: [script]}
    error = _refused(chain, mint.cbor())
    assert (error.code, error.data) == (3104, {"extraneousScripts": [policy.hex()]})
    mint.witness_extra = {}  # neighbour: the reference alone provides it
    assert chain.submit(mint.cbor()).mint == {policy.hex(): {"41": 1}}


def _nested(depth: int) -> bytes:
    return b"\x81" * (depth - 1) + enc(0)


def test_metadata_has_no_depth_limit_in_conway(chain: Chain) -> None:
    """Shelley's ``validMetadatum`` (Ogmios 3108) bounds string sizes only; Conway sets no nesting limit.
    Nesting 65 and 300 deep is accepted and renders as chain-sync JSON. The devnet's own bound (cbor2's
    400 levels) is a known difference, answered -32602, not a ledger verdict."""
    for depth in (65, 300):
        tx = TxParts(chain)
        tx.aux = b"\xa1" + enc(674) + _nested(depth)
        accepted = chain.submit(tx.cbor())
        assert "metadata" in transaction_json(tx.cbor(), tx_id=accepted.id)
    tx = TxParts(chain)
    tx.aux = b"\xa1" + enc(674) + _nested(420)
    refused_at_decode(chain, tx.cbor(), "depth")


def test_fee_and_size_exclude_the_is_valid_byte() -> None:
    """``toCBORForSizeComputation`` encodes [body, witnesses, aux]: the 1-byte is_valid flag is not counted.
    A fee of exactly ``44 * (len - 1) + 155381`` is enough, one lovelace less is ``FeeTooSmallUTxO``; a
    16,385-byte tx measures 16,384 and fits ``maxTxSize`` (``MaxTxSizeUTxO``, Ogmios 3119), one more does not."""
    chain = make_chain()
    tx = TxParts(chain)
    exact = _linear_fee(_at_fee(tx, 200_000))
    error = _refused(chain, _at_fee(tx, exact - 1))
    assert (error.code, error.data["minimumRequiredFee"]) == (3122, {"ada": {"lovelace": exact}})
    assert chain.submit(_at_fee(tx, exact)).ledger_size == len(tx.cbor()) - 1
    for total, verdict in ((16_385, None), (16_386, 3119)):
        big = TxParts(make_chain())
        big.fee = 1_000_000
        big.aux = b"\xa1" + enc(674) + enc([])
        room = total - len(big.cbor()) - 1  # the list's head grows by a byte for 24-255 items
        strings = (room - 52) // 66  # 64-byte strings (66 encoded), then two of 24-64 bytes (26-66 encoded)
        pads = room - 66 * strings - 4
        first = min(64, pads - 24)
        big.aux = b"\xa1" + enc(674) + enc(["x" * 64] * strings + ["y" * first, "z" * (pads - first)])
        assert len(big.cbor()) == total
        if verdict is None:
            big.chain.submit(big.cbor())
        else:
            error = _refused(big.chain, big.cbor())
            assert (error.code, error.data["measuredTransactionSize"]) == (3119, {"bytes": total - 1})


# -- item 10: a full mempool ---------------------------------------------------------------------------------


def test_a_full_mempool_answers_at_once_then_accepts_after_a_block() -> None:
    """Known difference: the node's ``addTx`` makes the submitter wait for room (ouroboros-consensus
    ``Mempool.addTx`` blocks while the mempool is full); the devnet answers 3997 MempoolFull at once and takes
    the same tx after the next block (devnet/README.md, fidelity limits)."""
    chain = make_chain(max_block_body_size_bytes=300)  # capacity: two bodies, 600 bytes (two of these txs)
    txs = [TxParts(chain, key=i).cbor() for i in range(3)]
    for raw in txs[:2]:
        chain.submit(raw)
    error = _refused(chain, txs[2])
    assert (error.code, error.data) == (3997, {"error": "MempoolFull"})
    chain.produce_blocks(1)
    chain.submit(txs[2])
