"""Block extraction: every tx id, and details only for the transactions that matter."""

from __future__ import annotations

import orjson

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
