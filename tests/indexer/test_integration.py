"""The indexer as a real process against the real devnet process, both on loopback.

One devnet and one indexer serve the read-only and bad-input tests of this module; the tx lifecycle,
kill and restart tests get their own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pycardano import Address, Network
from pycardano.hash import VerificationKeyHash

from common.grpcutil import open_channel
from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc, common_pb2
from tests.indexer.txbuild import payment_tx
from tests.support.devnet_fixture import DevnetProcess
from tests.support.indexer_fixture import IndexerProcess

pytestmark = pytest.mark.slow
State = chain_pb2.TransactionStatus.State
SINK = str(Address(VerificationKeyHash(b"\x5a" * 28), network=Network.TESTNET))
POLICY = "ab" * 28
LEDGER_ERROR_KEY = "creatorpass-ledger-error-bin"


def indexer_env(dev: DevnetProcess) -> dict[str, str]:
    return {"INDEXER_TREASURY_ADDRESS": dev.genesis_key(1)["address"], "INDEXER_SINK_ADDRESS": SINK,
            "INDEXER_POLICY_ID": POLICY}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevnetProcess, IndexerProcess]]:
    dev = DevnetProcess(block_time=0).start()
    dev.fund(SINK, 3_000_000, {f"{POLICY}.435245415445": 7})
    dev.blocks(2)
    idx = IndexerProcess(ogmios_url=dev.ogmios_url, kupo_url=dev.kupo_url,
                         db_path=tmp_path_factory.mktemp("idx") / "i.db", env=indexer_env(dev)).start()
    idx.wait_health({200})
    yield dev, idx
    idx.close()
    dev.close()


@pytest.fixture
async def stub(shared: tuple[DevnetProcess, IndexerProcess]) -> AsyncIterator[chain_pb2_grpc.ChainServiceStub]:
    async with open_channel(shared[1].grpc_target) as channel:
        yield chain_pb2_grpc.ChainServiceStub(channel)


async def expect_code(call: Any, code: grpc.StatusCode, match: str = "") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert match.lower() in (info.value.details() or "").lower()
    return info.value


async def test_tip_params_utxos_and_balances(shared: tuple[DevnetProcess, IndexerProcess],
                                             stub: chain_pb2_grpc.ChainServiceStub) -> None:
    dev, _ = shared
    info = dev.info()
    tip = await stub.GetTip(chain_pb2.GetTipRequest())
    synced = tip.connected and tip.indexer_tip.block_id == info["tip"]["id"] and tip.sync_progress == 1.0
    assert synced, shared[1].log_text()
    params = await stub.GetProtocolParameters(chain_pb2.GetProtocolParametersRequest())
    assert params.min_fee_coefficient == info["protocol_parameters"]["min_fee_coefficient"]
    assert json.loads(params.raw_json)["minFeeCoefficient"] == params.min_fee_coefficient

    asset = common_pb2.AssetId(policy_id=POLICY, asset_name="435245415445")
    balance = await stub.GetAssetBalance(chain_pb2.GetAssetBalanceRequest(address=SINK, asset=asset))
    assert (balance.lovelace, balance.quantity, balance.utxo_count) == (3_000_000, 7, 1)
    assert balance.as_of.slot > 0
    utxos = await stub.GetUtxos(chain_pb2.GetUtxosRequest(address=SINK))
    [utxo] = utxos.utxos
    by_ref = await stub.GetUtxos(chain_pb2.GetUtxosRequest(out_refs=chain_pb2.OutRefList(out_refs=[
        utxo.out_ref, common_pb2.OutRef(tx_id="00" * 32, index=0)])))
    assert [u.out_ref for u in by_ref.utxos] == [utxo.out_ref] and by_ref.utxos[0].value == utxo.value
    filtered = await stub.GetUtxos(chain_pb2.GetUtxosRequest(address=SINK, asset=common_pb2.AssetId(
        policy_id="cd" * 28, asset_name="")))
    assert list(filtered.utxos) == []


async def test_bad_input_gets_invalid_argument_or_not_found(stub: chain_pb2_grpc.ChainServiceStub) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await expect_code(stub.GetAssetBalance(chain_pb2.GetAssetBalanceRequest(address="addr_test1nope")), invalid,
                      "address")
    await expect_code(stub.GetAssetBalance(chain_pb2.GetAssetBalanceRequest(address=SINK.replace("addr_test",
                      "addr"))), invalid, "address")
    await expect_code(stub.GetUtxos(chain_pb2.GetUtxosRequest()), invalid, "address or out_refs")
    refs = [common_pb2.OutRef(tx_id="00" * 32, index=i) for i in range(257)]
    await expect_code(stub.GetUtxos(chain_pb2.GetUtxosRequest(out_refs=chain_pb2.OutRefList(out_refs=refs))),
                      invalid, "at most 256")
    await expect_code(stub.GetUtxos(chain_pb2.GetUtxosRequest(out_refs=chain_pb2.OutRefList(out_refs=[
        common_pb2.OutRef(tx_id="zz" * 32)]))), invalid, "tx_id")
    await expect_code(stub.GetAssetBalance(chain_pb2.GetAssetBalanceRequest(
        address=SINK, asset=common_pb2.AssetId(policy_id="abc")), ), invalid, "policy id")
    await expect_code(stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id="ABC")), invalid, "hex")
    await expect_code(stub.GetTransaction(chain_pb2.GetTransactionRequest(tx_id="11" * 32)),
                      grpc.StatusCode.NOT_FOUND, "not one the indexer records")
    await expect_code(stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest()), invalid, "empty")
    await expect_code(stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest(tx_cbor=b"\x84" * 16385)),
                      invalid, "at most 16384")
    await expect_code(stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest(tx_cbor=b"\x01\x02")),
                      invalid, "Ogmios refused")
    stream = stub.WatchTransactions(chain_pb2.WatchTransactionsRequest(tx_ids=["11" * 32] * 257))
    await expect_code(stream.read(), invalid, "at most 256")
    unknown = await stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id="11" * 32))
    assert unknown.state == State.STATE_UNKNOWN and unknown.depth == 0


async def test_ledger_refusal_is_typed(shared: tuple[DevnetProcess, IndexerProcess],
                                       stub: chain_pb2_grpc.ChainServiceStub) -> None:
    dev, _ = shared
    tx, _ = payment_tx(dev.genesis_key(0), ("77" * 32, 3, 10_000_000), [(SINK, 2_000_000)])
    error = await expect_code(stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest(tx_cbor=tx)),
                              grpc.StatusCode.FAILED_PRECONDITION, "3117")
    trailer = dict(error.trailing_metadata() or ())
    ledger = chain_pb2.LedgerError.FromString(trailer[LEDGER_ERROR_KEY])
    assert ledger.code == 3117 and "77" * 32 in ledger.data_json and "already spent" in ledger.reason


async def utxo_of(stub: chain_pb2_grpc.ChainServiceStub, address: str) -> tuple[str, int, int]:
    utxos = (await stub.GetUtxos(chain_pb2.GetUtxosRequest(address=address))).utxos
    best = max(utxos, key=lambda u: u.value.lovelace)
    return best.out_ref.tx_id, best.out_ref.index, best.value.lovelace


async def collect(stream: Any, into: list[chain_pb2.TransactionStatus]) -> None:
    async for status in stream:
        into.append(status)


async def until_status(stub: chain_pb2_grpc.ChainServiceStub, tx_id: str,
                       check: Callable[[chain_pb2.TransactionStatus], bool]) -> chain_pb2.TransactionStatus:
    async with asyncio.timeout(20):
        while True:
            status = await stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id=tx_id))
            if check(status):
                return status
            await asyncio.sleep(0.02)


async def until_streamed(seen: list[Any], condition: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not (seen and condition(seen[-1])):
            await asyncio.sleep(0.01)


async def test_submit_mempool_confirm_rollback_reconfirm(devnet: DevnetProcess, indexer_factory: Any) -> None:
    idx = indexer_factory(devnet, env=indexer_env(devnet))
    await asyncio.to_thread(idx.wait_health, {200})
    key = devnet.genesis_key(0)
    async with open_channel(idx.grpc_target) as channel:
        stub = chain_pb2_grpc.ChainServiceStub(channel)
        tip_slot = (await stub.GetTip(chain_pb2.GetTipRequest())).node_tip.slot
        tx, tx_id = payment_tx(key, await utxo_of(stub, key["address"]), [(SINK, 2_000_000)],
                               metadata={674: {"msg": ["quote q-1"]}}, ttl=tip_slot + 100_000)
        submitted = await stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest(tx_cbor=tx))
        assert submitted.tx_id == tx_id
        seen: list[chain_pb2.TransactionStatus] = []
        watch = asyncio.create_task(collect(stub.WatchTransactions(chain_pb2.WatchTransactionsRequest(
            tx_ids=[tx_id])), seen))
        status = await stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id=tx_id))
        assert status.state == State.STATE_MEMPOOL
        async with asyncio.timeout(10):  # the stream's first message (its current status) before any block
            while not seen:
                await asyncio.sleep(0.01)

        await asyncio.to_thread(devnet.blocks, 1)
        first = await until_status(stub, tx_id, lambda s: s.state == State.STATE_CONFIRMED)
        assert first.depth == 1 and first.block_height > 0
        # The stream carries each tx's latest status (changes a slow reader missed coalesce): wait for the
        # stream itself to report depth 1 before the next blocks, so what it reports next is well defined.
        await until_streamed(seen, lambda s: s.state == State.STATE_CONFIRMED and s.depth == 1)
        await asyncio.to_thread(devnet.blocks, 2)
        assert (await until_status(stub, tx_id, lambda s: s.depth == 3)).block == first.block
        await until_streamed(seen, lambda s: s.depth == 3)

        record = await stub.GetTransaction(chain_pb2.GetTransactionRequest(tx_id=tx_id))
        assert (record.outputs[0].address, record.outputs[0].value.lovelace) == (SINK, 2_000_000)
        assert json.loads(record.metadata_json) == {"674": {"json": {"msg": ["quote q-1"]}}}
        assert record.fee == 400_000 and record.invalid_hereafter == tip_slot + 100_000

        await asyncio.to_thread(devnet.rollback, 3)
        rolled = await until_status(stub, tx_id, lambda s: s.state == State.STATE_ROLLED_BACK)
        assert rolled.block == first.block and rolled.depth == 0
        # Like a node, the devnet drops a rolled-back block's txs: the submitter resubmits.
        await stub.SubmitTransaction(chain_pb2.SubmitTransactionRequest(tx_cbor=tx))
        await asyncio.to_thread(devnet.blocks, 2)
        again = await until_status(stub, tx_id, lambda s: s.state == State.STATE_CONFIRMED and s.depth == 2)
        async with asyncio.timeout(10):
            while seen[-1].depth != 2 or seen[-1].block != again.block:
                await asyncio.sleep(0.02)
        watch.cancel()
    states = [s.state for s in seen]
    assert states[0] == State.STATE_MEMPOOL and State.STATE_ROLLED_BACK in states
    assert states.index(State.STATE_CONFIRMED) < states.index(State.STATE_ROLLED_BACK)
    before = [s.depth for s in seen[: states.index(State.STATE_ROLLED_BACK)] if s.state == State.STATE_CONFIRMED]
    assert before[0] == 1 and before[-1] == 3 and before == sorted(set(before))  # blocks in one batch coalesce


async def test_watch_ends_at_depth(devnet: DevnetProcess, indexer_factory: Any) -> None:
    idx = indexer_factory(devnet)
    await asyncio.to_thread(idx.wait_health, {200})
    tx_id = await asyncio.to_thread(devnet.fund, SINK, 2_000_000)  # submitted by someone else
    async with open_channel(idx.grpc_target) as channel:
        stub = chain_pb2_grpc.ChainServiceStub(channel)
        status = await stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id=tx_id))
        assert status.state == State.STATE_MEMPOOL  # asked Ogmios' mempool (hasTransaction)
        await asyncio.to_thread(devnet.blocks, 4)
        await until_status(stub, tx_id, lambda s: s.depth == 4)
        async with asyncio.timeout(10):
            seen = [s async for s in stub.WatchTransactions(chain_pb2.WatchTransactionsRequest(
                tx_ids=[tx_id], until_depth=3))]
    assert [(s.state, s.depth) for s in seen] == [(State.STATE_CONFIRMED, 4)]


def sample_tx_ids(dev: DevnetProcess) -> list[tuple[str, int]]:
    """(tx id, block height) of txs in the devnet's last blocks (the control API lists up to 100)."""
    answer = dev.blocks(0)
    pairs = [(t, b["height"]) for b in answer["blocks"] for t in b["transaction_ids"]]
    return pairs[:: max(1, len(pairs) // 20)]


async def matches_devnet(idx: IndexerProcess, dev: DevnetProcess, sample: list[tuple[str, int]]) -> None:
    tip = dev.info()["tip"]
    body = await asyncio.to_thread(idx.wait_health, {200}, 60, lambda b: b["tip_height"] == tip["height"])
    assert body["tip_slot"] == tip["slot"]
    async with open_channel(idx.grpc_target) as channel:
        stub = chain_pb2_grpc.ChainServiceStub(channel)
        assert (await stub.GetTip(chain_pb2.GetTipRequest())).indexer_tip.block_id == tip["id"]
        for tx_id, height in sample:
            status = await stub.GetTransactionStatus(chain_pb2.GetTransactionStatusRequest(tx_id=tx_id))
            assert (status.state, status.block_height) == (State.STATE_CONFIRMED, height)
            assert status.depth == tip["height"] - height + 1


async def test_kill_9_mid_sync_then_resume(devnet: DevnetProcess, indexer_factory: Any) -> None:
    await asyncio.to_thread(devnet.blocks, 1500, "typical")
    sample = sample_tx_ids(devnet)
    idx = indexer_factory(devnet, env={"INDEXER_BATCH_MAX_BLOCKS": "50", "INDEXER_PIPELINE_DEPTH": "10"})
    await asyncio.to_thread(idx.wait_health, {200, 202}, 30,
                            lambda b: (b["tip_height"] or 0) > 100)
    idx.kill()
    idx.start()
    body = await asyncio.to_thread(idx.wait_health, {200, 202}, 30, lambda b: b["connected"])
    assert body["blocks_processed"] < 1500  # resumed from its cursor, not from origin
    await matches_devnet(idx, devnet, sample)


async def test_devnet_kill_and_restart(devnet_factory: Any, indexer_factory: Any, tmp_path: Path) -> None:
    dev = devnet_factory(block_time=0, state_dir=tmp_path / "chain")
    await asyncio.to_thread(dev.blocks, 20, "typical")
    idx = indexer_factory(dev)
    await matches_devnet(idx, dev, sample_tx_ids(dev))
    dev.kill()
    await asyncio.to_thread(idx.wait_health, {503}, 30)
    dev.start()
    await asyncio.to_thread(dev.blocks, 5, "typical")
    await matches_devnet(idx, dev, sample_tx_ids(dev))


def test_health_check_subcommand(shared: tuple[DevnetProcess, IndexerProcess]) -> None:
    from tests.indexer.test_main import run

    done = run("health-check", INDEXER_HEALTH_PORT=str(shared[1].health_port))
    assert done.returncode == 0 and "200" in done.stdout
