"""Blocks, slots, the mempool, rollbacks, the faucet and change notification (in process)."""

from __future__ import annotations

import asyncio

import pytest

from devnet.chain import Chain, LedgerRejection, OutRef
from tests.devnet.ledger_support import START, make_chain, rejection
from tests.devnet.test_ledger_rules import payment

POLICY = "ef" * 28


@pytest.fixture
def chain() -> Chain:
    return make_chain()


def test_genesis_distribution_block(chain: Chain) -> None:
    assert [b.height for b in chain.blocks] == [1]
    first = chain.blocks[0]
    assert first.ancestor == "genesis" and first.slot == 0  # the distribution opens the chain at slot 0
    (tx,) = first.transactions
    paid = {out.address: out.lovelace for out in tx.outputs}
    for key in chain.genesis.keys:
        assert paid[key.address] == 100_000_000_000
        assert chain.outputs[OutRef(tx.id, [o.address for o in tx.outputs].index(key.address))].created.slot == 0


def test_blocks_have_heights_strictly_increasing_slots_and_ancestors(chain: Chain) -> None:
    produced = chain.produce_blocks(5)
    assert [b.height for b in produced] == [2, 3, 4, 5, 6]
    # a run fills the room behind the clock (which stands at slot 1000), one slot apart, ending now
    assert [b.slot for b in produced] == [996, 997, 998, 999, 1000]
    more = chain.produce_blocks(2)  # no room left: strictly after the tip, ahead of the clock
    assert [b.slot for b in more] == [1001, 1002]
    assert chain.current_slot() == 1002 and chain.next_slot() == 1003
    for parent, child in zip(chain.blocks, chain.blocks[1:], strict=False):
        assert child.ancestor == parent.id
    assert len({b.id for b in chain.blocks}) == 8
    assert chain.block_by_id(produced[2].id) is produced[2]
    assert chain.block_at_height(4) is produced[2]
    assert chain.tip_json() == {"slot": 1002, "id": more[-1].id, "height": 8}
    assert chain.tip_point() == {"slot": 1002, "id": more[-1].id}


def test_a_run_in_slices_ends_at_the_clock(chain: Chain) -> None:
    first = chain.produce_blocks(3, followed_by=2)
    last = chain.produce_blocks(2)
    assert [b.slot for b in first + last] == [996, 997, 998, 999, 1000]


def test_block_ids_are_deterministic() -> None:
    one, two = make_chain(), make_chain()
    assert [b.id for b in one.produce_blocks(3)] == [b.id for b in two.produce_blocks(3)]


def test_block_body_size_limit_spills_into_next_block() -> None:
    chain = make_chain(max_block_body_size_bytes=2000)
    ids = [chain.fund(chain.genesis.keys[0].address, 2_000_000 + i) for i in range(12)]
    sizes = [tx.size for tx in chain.mempool]
    first = chain.produce_blocks(1)[0]
    assert sum(tx.size for tx in first.transactions) <= 2000
    assert 0 < len(first.transactions) < 12 and sum(sizes[: len(first.transactions) + 1]) > 2000
    while chain.mempool:
        chain.produce_blocks(1)
    assert [tx.id for b in chain.blocks[1:] for tx in b.transactions] == ids


def test_mempool_capacity_is_bounded() -> None:
    chain = make_chain(max_block_body_size_bytes=1000)  # capacity: two blocks' worth
    with pytest.raises(LedgerRejection) as info:
        for i in range(20):
            chain.fund(chain.genesis.keys[0].address, 2_000_000 + i)
    assert info.value.code == 3997
    assert chain.mempool_size_bytes() <= chain.mempool_capacity_bytes()


def test_mempool_chains_and_confirms_in_order(chain: Chain) -> None:
    first = chain.submit(payment(chain).to_cbor())
    second = chain.submit(payment(chain, lovelace=3_000_000).to_cbor())  # spends first's change
    assert OutRef(first.id, 1) in second.inputs
    assert chain.has_mempool_tx(first.id) and chain.has_mempool_tx(second.id)
    block = chain.produce_blocks(1)[0]
    assert [tx.id for tx in block.transactions] == [first.id, second.id]
    assert chain.outputs[OutRef(first.id, 1)].spent.tx_id == second.id
    assert not chain.mempool


def test_expired_transactions_leave_the_mempool() -> None:
    clock = {"now": START.timestamp() + 1000}
    from devnet.genesis import Genesis

    chain = Chain.create(Genesis(seed="ledger-tests", system_start=START), clock=lambda: clock["now"])
    tx = chain.submit(payment(chain, ttl=1010).to_cbor())
    clock["now"] += 20
    block = chain.produce_blocks(1)[0]
    assert block.transactions == [] and not chain.mempool
    assert chain.lookup(tx.inputs[0]) is not None


def test_rollback_restores_utxo_and_requeues(chain: Chain) -> None:
    tx = chain.submit(payment(chain).to_cbor())
    chain.produce_blocks(3)
    spent_ref = tx.inputs[0]
    assert (
        spent_ref not in chain.utxo
        and chain.outputs[spent_ref if spent_ref in chain.outputs else OutRef(tx.id, 0)] is not None
    )
    discarded = chain.rollback(3, drop_transactions=False)  # the devnet option: re-add the txs
    assert discarded == [] and chain.tip.height == 1
    assert spent_ref in chain.utxo and OutRef(tx.id, 0) not in chain.utxo and OutRef(tx.id, 0) not in chain.outputs
    assert [t.id for t in chain.mempool] == [tx.id]
    assert chain.rollbacks == 1
    chain.produce_blocks(1)
    assert OutRef(tx.id, 0) in chain.utxo


def test_rollback_drop_and_revalidation(chain: Chain) -> None:
    tx = chain.submit(payment(chain).to_cbor())
    chain.produce_blocks(1)
    dropped = chain.rollback(1, drop_transactions=True)
    assert [t.id for t in dropped] == [tx.id] and not chain.mempool
    # A tx whose input a rolled-back tx had created cannot come back without it.
    parent = chain.submit(payment(chain).to_cbor())
    chain.produce_blocks(1)
    child = chain.submit(payment(chain, lovelace=2_500_000).to_cbor())
    assert OutRef(parent.id, 1) in child.inputs
    chain.produce_blocks(1)
    discarded = chain.rollback(2, drop_transactions=True)
    assert {t.id for t in discarded} == {parent.id, child.id} and not chain.mempool
    with pytest.raises(ValueError, match="cannot roll back"):
        chain.rollback(5)


def test_rollback_revalidates_the_pending_mempool(chain: Chain) -> None:
    parent = chain.submit(payment(chain).to_cbor())
    chain.produce_blocks(1)
    child = chain.submit(payment(chain, lovelace=2_500_000).to_cbor())  # spends the confirmed parent's change
    assert chain.rollback(1, drop_transactions=False) == []
    assert [t.id for t in chain.mempool] == [parent.id, child.id]  # parent requeued first, child still valid
    chain.produce_blocks(1)
    child2 = chain.submit(payment(chain, lovelace=2_600_000).to_cbor())
    discarded = chain.rollback(1, drop_transactions=True)
    # parent and child dropped on request; child2 spent child's change, so it is invalid now
    assert [t.id for t in discarded] == [parent.id, child.id, child2.id]
    assert not chain.mempool


def test_fund_mints_any_policy_and_is_a_real_signed_tx(chain: Chain) -> None:
    target = chain.genesis.keys[2]
    tx_id = chain.fund(target.address, 3_000_000, {f"{POLICY}.{b'X'.hex()}": 7})
    (tx,) = chain.mempool
    assert tx.id == tx_id and tx.faucet and tx.mint == {POLICY: {"58": 7}}
    assert tx.vkey_witnesses[0][0] == chain.genesis.faucet.vkey
    chain.produce_blocks(1)
    out = chain.utxo[OutRef(tx_id, 0)]
    assert out.address == target.address and out.lovelace == 3_000_000 and out.assets == {POLICY: {"58": 7}}
    # Nobody else can: the same mint in a user tx needs the (unknown) policy script.
    assert rejection(chain, tx.cbor).code == 3117


def test_typical_fill_produces_valid_traffic(chain: Chain) -> None:
    blocks = chain.produce_blocks(25, fill="typical")
    txs = [tx for b in blocks for tx in b.transactions]
    assert len(txs) == 100
    assert any(tx.mint for tx in txs) and any(tx.metadata for tx in txs)
    assert not chain.mempool


def test_evaluate_reports_overlapping_additional_utxo(chain: Chain) -> None:
    tx = payment(chain)
    spent = tx.transaction_body.inputs[0]
    ref = OutRef(spent.transaction_id.payload.hex(), spent.index)
    error = rejection_of_evaluate(chain, tx.to_cbor(), [ref])
    assert error.code == 3002
    assert error.data == {"overlappingOutputReferences": [{"transaction": {"id": ref.tx_id}, "index": ref.index}]}


def rejection_of_evaluate(chain: Chain, raw: bytes, refs: list[OutRef]):  # type: ignore[no-untyped-def]
    from devnet.chain import LedgerRejection

    with pytest.raises(LedgerRejection) as info:
        chain.evaluate(raw, refs)
    return info.value


async def test_wait_for_change_wakes_on_new_blocks(chain: Chain) -> None:
    version = chain.version
    waiter = asyncio.create_task(chain.wait_for_change(version, timeout_s=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    chain.produce_blocks(1)
    assert await asyncio.wait_for(waiter, 5) > version
    assert await chain.wait_for_change(chain.version, timeout_s=0.01) == chain.version
