"""The Kupo server's secondary indexes (``devnet.kupo.outputs``) against a brute-force scan of every output.

One varied chain: typical blocks (payments among the genesis keys, mints under their three ``sig``
policies), funds to base addresses with stake parts (key and script payment parts, two stake keys), a
pointer, a script enterprise and a Byron address, assets of two more policies (one with an empty name),
spends of base-address outputs, a rollback whose txs are re-applied in new blocks and a rollback whose
txs are dropped. Every pattern form × spent/unspent × filters must answer exactly as the scan does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from devnet.chain import Chain, OutRef
from devnet.genesis import Genesis
from devnet.kupo.index import KupoIndex
from devnet.kupo.matches import query_matches
from devnet.kupo.outputs import OutputIndex
from devnet.kupo.patterns import delegation_part, parse_pattern, payment_part
from devnet.kupo.server import KUPO_KEY, build_app
from devnet.ogmios.encoding import base58_encode, bech32_encode
from devnet.store import ChainStore
from tests.support.devnet_protocols import SYSTEM_START, signed_tx

POLICY_A, POLICY_B = "a1" * 28, "b2" * 28
STAKE_A, STAKE_B = bytes(range(100, 128)), bytes(range(140, 168))
SCRIPT = bytes(range(200, 228))
BYRON = bytes.fromhex("82d818582183581c" + "11" * 28 + "a0001a12345678")
ABSENT_TX = "ee" * 32


def _text(raw: bytes) -> str:
    return base58_encode(raw) if raw[0] >> 4 == 8 else bech32_encode("addr_test", raw)


def _spend(chain: Chain, key_index: int, ref: OutRef, to: bytes) -> None:
    """Key ``key_index`` spends ``ref`` (at one of its base addresses), sending its tokens on to ``to``."""
    out = chain.utxo[ref]
    assets = {bytes.fromhex(p): {bytes.fromhex(n): q for n, q in names.items()} for p, names in out.assets.items()}
    value: Any = [2_000_000, assets] if assets else 2_000_000
    chain.submit(signed_tx(chain, key_index, [{0: to, 1: value}], utxo=(ref.tx_id, ref.index, out.lovelace)))


def _grow(chain: Chain, after_each_step: Callable[[], None] = lambda: None) -> None:
    """The varied history described in the module docstring, on a chain holding its distribution block."""
    k0, k1, k2 = chain.genesis.keys
    chain.produce_blocks(3, fill="typical")  # 12 txs: one mint under each genesis key's policy
    after_each_step()
    base_k0_a, base_k1_a = b"\x00" + k0.key_hash + STAKE_A, b"\x00" + k1.key_hash + STAKE_A
    base_k0_b, script_b = b"\x00" + k0.key_hash + STAKE_B, b"\x10" + SCRIPT + STAKE_B
    funded = [
        (base_k0_a, {}),
        (base_k0_a, {f"{POLICY_A}.4142": 3}),
        (base_k0_b, {POLICY_A: 1, f"{POLICY_B}.00": 2}),
        (base_k1_a, {f"{POLICY_B}.00": 5, f"{POLICY_B}.4142": 6}),
        (script_b, {f"{POLICY_A}.4142": 1}),
        (b"\x40" + k2.key_hash + b"\x01\x02\x03", {}),
        (b"\x70" + SCRIPT, {POLICY_B: 4}),
        (BYRON, {}),
    ]
    tx_ids = [chain.fund(_text(raw), 6_000_000 + i, assets) for i, (raw, assets) in enumerate(funded)]
    chain.produce_blocks(1, fill="typical")
    after_each_step()
    _spend(chain, 0, OutRef(tx_ids[0], 0), base_k1_a)
    _spend(chain, 0, OutRef(tx_ids[2], 0), base_k1_a)  # tokens of both policies move on
    chain.produce_blocks(1)
    after_each_step()
    _spend(chain, 0, OutRef(tx_ids[1], 0), base_k0_b)
    chain.produce_blocks(2, fill="typical")
    after_each_step()
    chain.rollback(3, drop_transactions=False)  # the txs back to the mempool: spent outputs return, created ones go
    after_each_step()
    chain.produce_blocks(2, fill="typical")  # ...and the same txs are applied again, in new blocks
    after_each_step()
    _spend(chain, 1, OutRef(tx_ids[3], 0), base_k0_a)
    chain.produce_blocks(1)
    after_each_step()
    chain.rollback(1, drop_transactions=True)  # that spend is undone for good: the output stays unspent
    after_each_step()
    chain.produce_blocks(1, fill="typical")
    after_each_step()


def _varied_chain() -> Chain:
    chain = Chain.create(Genesis(seed="kupo-index", system_start=SYSTEM_START))
    _grow(chain)
    return chain


@pytest.fixture(scope="module")
def varied() -> Iterator[tuple[Chain, OutputIndex]]:
    chain = Chain.create(Genesis(seed="kupo-index", system_start=SYSTEM_START))
    index = OutputIndex.follow(chain)  # follows from the first block: every change arrives incrementally
    _grow(chain)
    yield chain, index


def _pattern_texts(chain: Chain) -> list[str]:
    records = list(chain.outputs.values())
    addresses = {r.out.address_bytes for r in records}
    payments = {p for a in addresses if (p := payment_part(a)) is not None}
    delegations = {d for a in addresses if (d := delegation_part(a)) is not None}
    texts = ["*", "*/*", BYRON.hex(), base58_encode(BYRON)]
    texts += [_text(a) for a in addresses] + [a.hex() for a in addresses if a[0] >> 4 != 8]
    texts += [f"{p.hex()}/*" for p in payments] + [f"*/{d.hex()}" for d in delegations]
    texts += [bech32_encode("stake_test", b"\xe0" + d) for d in delegations]
    texts += [f"{p.hex()}/{d.hex()}" for p in payments for d in delegations]  # pairs that exist and that don't
    policies = {(p, n) for r in records for p, names in r.out.assets.items() for n in names}
    texts += [f"{p}.*" for p, _ in policies] + [f"{p}.{n}" for p, n in policies]
    texts += [f"{POLICY_A}.00", f"{'cc' * 28}.*"]
    tx_ids = [tx.id for block in chain.blocks for tx in block.transactions]
    for tx_id in [*tx_ids[:3], *tx_ids[-12:], ABSENT_TX]:
        texts += [f"*@{tx_id}", f"0@{tx_id}", f"1@{tx_id}", f"7@{tx_id}"]
    return sorted(set(texts))


def _filters(chain: Chain) -> list[dict[str, str]]:
    middle, late = chain.blocks[len(chain.blocks) // 2], chain.blocks[-2]
    spent_tx = next(r.out_ref.tx_id for r in chain.outputs.values() if r.spent is not None)
    return [
        {},
        {"order": "oldest_first"},
        {"created_after": str(middle.slot)},
        {"created_before": f"{middle.slot}.{middle.id}", "spent_after": str(late.slot)},
        {"spent_before": str(late.slot), "order": "oldest_first"},
        {"policy_id": POLICY_A},
        {"policy_id": POLICY_B, "asset_name": "00"},
        {"transaction_id": spent_tx},
        {"transaction_id": spent_tx, "output_index": "1"},
        {"resolve_hashes": ""},
    ]


def _both(chain: Chain, index: OutputIndex, configured: list[Any], text: str, query: dict[str, str]) -> tuple:
    pattern, kupo = parse_pattern(text), KupoIndex(chain)
    indexed = query_matches(chain, kupo, configured, pattern, query, outputs=index)
    scanned = query_matches(chain, kupo, configured, pattern, query)
    return indexed, scanned


def test_the_chain_is_varied(varied: tuple[Chain, OutputIndex]) -> None:
    chain, _ = varied
    records = list(chain.outputs.values())
    assert chain.rollbacks == 2
    assert sum(r.spent is not None for r in records) >= 10 and sum(r.spent is None for r in records) >= 10
    assert {r.out.address_bytes[0] >> 4 for r in records} >= {0, 1, 4, 6, 7, 8}
    assert len({p for r in records for p in r.out.assets}) >= 5  # two fixed policies and three sig policies


@pytest.mark.parametrize("status", ["", "spent", "unspent"])
def test_every_pattern_and_filter_answers_as_the_scan(varied: tuple[Chain, OutputIndex], status: str) -> None:
    chain, index = varied
    configured = [parse_pattern("*")]
    nonempty = 0
    for text in _pattern_texts(chain):
        for extra in _filters(chain):
            query = {**extra, status: ""} if status else extra
            indexed, scanned = _both(chain, index, configured, text, query)
            assert indexed == scanned, (text, query)
            nonempty += bool(scanned)
    assert nonempty > 100  # the comparison is not vacuous


def test_configured_patterns_still_restrict(varied: tuple[Chain, OutputIndex]) -> None:
    chain, index = varied
    k0 = chain.genesis.keys[0]
    configured = [parse_pattern(f"{POLICY_B}.*"), parse_pattern(f"{k0.key_hash.hex()}/*")]
    for text in ("*", "*/*", f"*/{STAKE_B.hex()}", f"{POLICY_A}.*", k0.address):
        for status in ({}, {"unspent": ""}, {"spent": ""}):
            indexed, scanned = _both(chain, index, configured, text, status)
            assert indexed == scanned, (text, status)


def test_incremental_index_equals_a_rebuilt_one(varied: tuple[Chain, OutputIndex]) -> None:
    chain, index = varied
    snapshot = index.snapshot()
    assert snapshot == OutputIndex.follow(chain).snapshot()
    assert snapshot["unspent_refs"] == {ref for ref, r in chain.outputs.items() if r.spent is None}
    filed = set().union(*snapshot["every"].values())
    assert filed == set().union(*snapshot["by_tx"].values()) == set(chain.outputs)


def test_the_index_follows_every_step() -> None:
    chain = Chain.create(Genesis(seed="kupo-index", system_start=SYSTEM_START))
    index = OutputIndex.follow(chain)
    configured = [parse_pattern("*")]
    steps = []

    def check() -> None:
        assert index.snapshot() == OutputIndex.follow(chain).snapshot()
        for text in _pattern_texts(chain)[::2]:
            for status in ({}, {"unspent": ""}, {"spent": ""}):
                indexed, scanned = _both(chain, index, configured, text, status)
                assert indexed == scanned, (len(steps), text, status)
        steps.append(chain.tip)

    _grow(chain, check)
    assert len(steps) == 9


def test_rolling_back_everything_empties_the_index() -> None:
    chain = _varied_chain()
    index = OutputIndex.follow(chain)
    chain.rollback(len(chain.blocks), drop_transactions=True)
    assert index.snapshot() == {"every": {}, "unspent": {}, "by_tx": {}, "unspent_refs": set()}


def test_a_replayed_state_dir_rebuilds_the_index(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    genesis = Genesis(seed="kupo-index", system_start=SYSTEM_START)
    store.save_genesis(genesis.to_state())
    chain = Chain.create(genesis, store=store)
    live = OutputIndex.follow(chain)
    _grow(chain)
    chain.sync()
    store.close()
    reopened_store = ChainStore(tmp_path)
    stored = reopened_store.load_genesis()
    assert stored is not None
    again = Chain.create(Genesis.from_state(stored), store=reopened_store)
    try:
        kupo: Any = build_app(again)[KUPO_KEY]  # files the replayed outputs when it starts following
        replayed = kupo.outputs
        assert replayed.snapshot() == live.snapshot()
        configured = [parse_pattern("*")]
        for text in _pattern_texts(again)[::3]:
            for status in ({}, {"unspent": ""}, {"spent": ""}):
                indexed, scanned = _both(again, replayed, configured, text, status)
                assert indexed == scanned, (text, status)
    finally:
        reopened_store.close()


async def test_http_answers_with_and_without_indexes(varied: tuple[Chain, OutputIndex]) -> None:
    chain, _ = varied
    app = build_app(chain)
    server = TestServer(app)
    await server.start_server()
    kupo: Any = app[KUPO_KEY]
    k1 = chain.genesis.keys[1]
    paths = [f"/matches/{k1.address}?unspent", f"/matches/{POLICY_B}.*?unspent",
             f"/matches/*/{STAKE_A.hex()}?spent", f"/matches/{k1.key_hash.hex()}/*?order=oldest_first"]
    try:
        async with ClientSession() as http:
            for path in paths:
                bodies = []
                for use_indexes in (True, False):
                    kupo.use_indexes = use_indexes
                    async with http.get(server.make_url(path), headers={"Accept": "application/json"}) as resp:
                        assert resp.status == 200
                        bodies.append(await resp.json())
                assert bodies[0] == bodies[1] and bodies[0], path
    finally:
        await server.close()


def test_candidates_are_narrow(varied: tuple[Chain, OutputIndex]) -> None:
    chain, index = varied
    k0 = chain.genesis.keys[0]
    base = b"\x00" + k0.key_hash + STAKE_B
    found = index.candidates(parse_pattern(_text(base)), unspent=True)
    assert found is not None and 0 < len(found) < len(chain.outputs) // 4
    assert index.candidates(parse_pattern("*")) is None  # a full scan
    assert not index.candidates(parse_pattern(f"*@{ABSENT_TX}"))
    tx_id = next(iter(chain.outputs)).tx_id
    assert list(index.candidates(parse_pattern("*"), transaction_id=tx_id, output_index=0) or []) == [
        OutRef(tx_id, 0)
    ]
