"""Block extraction: every tx id, and details only for the transactions that matter."""

from __future__ import annotations

import orjson

from indexer.blocks import decode_next_block, extract
from indexer.chain import Relevance, extract_block, parse_point, parse_tip
from tests.indexer.fakes import make_tx, vector

TREASURY = "addr_test1treasury"
SINK = "addr_test1sink"
POLICY = "cd" * 28


def _block(*txs: dict) -> dict:  # type: ignore[type-arg]
    return {"height": 5, "slot": 11, "id": "aa" * 32, "transactions": list(txs)}


def test_reference_block_records_every_tx_id() -> None:
    block = vector("NextBlockResponse", 23)["result"]["block"]
    record = extract_block(block, Relevance(frozenset()))
    assert record.tx_ids == [tx["id"] for tx in block["transactions"]]
    assert record.details == []
    minted = next(iter(block["transactions"][0]["mint"]))
    record = extract_block(block, Relevance(frozenset(), policy_id=minted))
    assert len(record.details) >= 1
    doc = orjson.loads(record.details[0][1])
    assert doc["mint"] == block["transactions"][0]["mint"] and doc["metadata"] is not None


def test_payments_spends_mints_and_submitted_txs_matter() -> None:
    relevance = Relevance(frozenset({TREASURY, SINK}), POLICY)
    pay = make_tx("01" * 32, [("addr_test1other", 5), (TREASURY, 7)], metadata={"674": {"json": {"q": "x"}}})
    spend = make_tx("02" * 32, [("addr_test1other", 1)], inputs=[("01" * 32, 1)])
    burn = make_tx("03" * 32, [], mint={POLICY: {"43": -2}})
    noise = make_tx("04" * 32, [("addr_test1other", 1)], inputs=[("01" * 32, 0)])
    mine = make_tx("05" * 32, [("addr_test1other", 1)])
    relevance.submitted.add("05" * 32)
    record = extract_block(_block(pay, spend, burn, noise, mine), relevance)
    assert len(record.tx_ids) == 5
    assert [t[:2] for t, _ in record.details] == ["01", "02", "03", "05"]
    assert record.created == [("01" * 32, 1)] and record.spent == record.created
    assert relevance.unspent == set()
    detail = orjson.loads(record.details[0][1])
    assert detail["outputs"][1] == {"address": TREASURY, "value": {"ada": {"lovelace": 7}}}
    assert detail["metadata"] == {"674": {"json": {"q": "x"}}} and detail["invalid_hereafter"] == 1000


def test_points_and_tips() -> None:
    assert parse_point("origin").is_origin
    assert parse_point({"slot": 3, "id": "ab" * 32}).to_ogmios() == {"slot": 3, "id": "ab" * 32}
    assert parse_tip("origin") is None
    assert parse_tip({"slot": 3, "id": "ab" * 32, "height": 2}).height == 2  # type: ignore[union-attr]


def _everything_relevant(block: dict) -> Relevance:  # type: ignore[type-arg]
    txs = block.get("transactions") or []
    addresses = {o["address"] for tx in txs for o in tx.get("outputs") or []}
    mints = [p for tx in txs for p in tx.get("mint") or {}]
    unspent = {(r["transaction"]["id"], r["index"]) for tx in txs[1:] for r in tx.get("inputs") or []}
    return Relevance(frozenset(list(addresses)[::2]), mints[0] if mints else "", unspent,
                     {txs[-1]["id"]} if txs else set())


def test_typed_decoder_agrees_with_the_dict_path_on_every_reference_block() -> None:
    for index in range(50):
        message = vector("NextBlockResponse", index)
        result = message["result"]
        decoded = decode_next_block(orjson.dumps(result))
        assert decoded.direction == result["direction"] and decoded.tip == result["tip"]
        if result["direction"] == "backward":
            assert decoded.point == result["point"]
            continue
        fast, slow = _everything_relevant(result["block"]), _everything_relevant(result["block"])
        typed, plain = extract(decoded, fast), extract_block(result["block"], slow)
        assert (typed.height, typed.slot, typed.id, typed.tx_ids) == (plain.height, plain.slot, plain.id, plain.tx_ids)
        assert (typed.created, typed.spent, fast.unspent) == (plain.created, plain.spent, slow.unspent)
        assert [(t, orjson.loads(d)) for t, d in typed.details] == [(t, orjson.loads(d)) for t, d in plain.details]


def test_an_unforeseen_block_shape_falls_back_to_the_full_parse() -> None:
    odd = {"direction": "forward", "tip": "origin",
           "block": {"id": "ab" * 32, "height": "7", "slot": 9, "transactions": [make_tx("01" * 32)]}}
    decoded = decode_next_block(orjson.dumps(odd))
    assert decoded.block is None and decoded.raw_block == odd["block"]
    assert extract(decoded, Relevance(frozenset())).tx_ids == ["01" * 32]
