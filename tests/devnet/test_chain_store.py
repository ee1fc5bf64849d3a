"""Persistence to --state-dir: replay, rollback truncation, torn tails, locking, and a real kill -9."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from devnet.chain import Chain, OutRef
from devnet.genesis import Genesis
from devnet.store import ChainStore, StoreError
from tests.devnet.ledger_support import START
from tests.support.devnet_fixture import DevnetProcess

POLICY = "aa" * 28


def open_chain(state_dir: Path, slot: int = 1000) -> Chain:
    store = ChainStore(state_dir)
    stored = store.load_genesis()
    genesis = Genesis.from_state(stored) if stored else Genesis(seed="store-tests", system_start=START)
    if stored is None:
        store.save_genesis(genesis.to_state())
    now = START.timestamp() + slot
    return Chain.create(genesis, store=store, clock=lambda: now)


def test_replay_restores_blocks_utxo_and_ids(tmp_path: Path) -> None:
    chain = open_chain(tmp_path)
    tx_id = chain.fund(chain.genesis.keys[0].address, 4_000_000, {f"{POLICY}.00": 5})
    chain.produce_blocks(3, fill="typical")
    ids, utxo = [b.id for b in chain.blocks], dict(chain.utxo)
    chain.store.close()
    again = open_chain(tmp_path, slot=5000)
    assert [b.id for b in again.blocks] == ids
    assert again.utxo == utxo
    assert again.utxo[OutRef(tx_id, 0)].assets == {POLICY: {"00": 5}}
    assert again.blocks[1].transactions[0].faucet


def test_rollback_truncates_the_log(tmp_path: Path) -> None:
    chain = open_chain(tmp_path)
    chain.produce_blocks(5)
    chain.rollback(2)
    chain.produce_blocks(1)
    ids = [b.id for b in chain.blocks]
    chain.store.close()
    assert [b.id for b in open_chain(tmp_path).blocks] == ids


@pytest.mark.parametrize("cut", [1, 5, 9])
def test_a_torn_last_record_is_cut_off(tmp_path: Path, cut: int) -> None:
    chain = open_chain(tmp_path)
    chain.produce_blocks(3)
    ids = [b.id for b in chain.blocks]
    chain.store.close()
    log = tmp_path / "blocks.log"
    log.write_bytes(log.read_bytes()[:-cut])  # kill -9 in the middle of the last write
    again = open_chain(tmp_path)
    assert [b.id for b in again.blocks] == ids[:-1]
    again.produce_blocks(1)  # and the log keeps working after the cut
    again.store.close()
    assert len(open_chain(tmp_path).blocks) == len(ids)


def test_corrupt_record_checksum_is_cut_off(tmp_path: Path) -> None:
    chain = open_chain(tmp_path)
    chain.produce_blocks(2)
    chain.store.close()
    log = tmp_path / "blocks.log"
    data = bytearray(log.read_bytes())
    data[-3] ^= 0xFF
    log.write_bytes(bytes(data))
    assert len(open_chain(tmp_path).blocks) == 2


def test_one_devnet_per_state_dir(tmp_path: Path) -> None:
    chain = open_chain(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        ChainStore(tmp_path)
    chain.store.close()
    ChainStore(tmp_path).close()


@pytest.mark.slow
def test_process_restart_and_kill_keep_the_chain(tmp_path: Path) -> None:
    with DevnetProcess(state_dir=tmp_path / "state", seed="restart") as dev:
        address = dev.genesis_key(0)["address"]
        tx_id = dev.fund(address, 3_000_000, {f"{POLICY}.01": 2})
        tip = dev.blocks(4)["tip"]
        system_start = dev.info()["system_start"]
        dev.restart()
        assert dev.info()["tip"] == tip
        assert dev.info()["system_start"] == system_start
        dev.blocks(2)
        tip = dev.info()["tip"]
        dev.kill()
        dev.start()
        assert dev.info()["tip"] == tip
        (entry,) = ogmios_utxo(dev, tx_id)  # the funded output survived both restarts
        assert entry["value"][POLICY] == {"01": 2} and entry["address"] == address
        dev.stop()
        assert "devnet_stopped" in dev.log_text()
    wrong_seed = DevnetProcess(state_dir=tmp_path / "state", seed="another")
    with pytest.raises(Exception, match="seed"):
        wrong_seed.start()
    wrong_seed.close()


def ogmios_utxo(dev: DevnetProcess, tx_id: str) -> list[dict]:
    request = {"jsonrpc": "2.0", "method": "queryLedgerState/utxo",
               "params": {"outputReferences": [{"transaction": {"id": tx_id}, "index": 0}]}, "id": 1}
    req = urllib.request.Request(dev.ogmios_http_url, data=json.dumps(request).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["result"]  # type: ignore[no-any-return]
