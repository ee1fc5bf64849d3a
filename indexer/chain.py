"""Turning Ogmios chain-sync blocks into compact records: every tx id, plus details of the txs that matter.

A tx matters when it pays one of the configured addresses (treasury/custodial, sink, watched), spends an
output we saw paid to one of them, mints or burns under the configured policy, or was submitted through
the indexer. :class:`Relevance` holds that state in memory; the store persists it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["BlockRecord", "Point", "Relevance", "Tip", "extract_block", "parse_point", "parse_tip"]

OutRefKey = tuple[str, int]  # (tx id hex, output index)


@dataclass(frozen=True, slots=True)
class Point:
    """A chain point; origin is slot 0 with an empty id."""

    slot: int
    id: str

    @property
    def is_origin(self) -> bool:
        return not self.id

    def to_ogmios(self) -> Any:
        return "origin" if self.is_origin else {"slot": self.slot, "id": self.id}


ORIGIN = Point(0, "")


@dataclass(frozen=True, slots=True)
class Tip:
    slot: int
    id: str
    height: int


def parse_point(value: Any) -> Point:
    if value == "origin" or value is None:
        return ORIGIN
    return Point(int(value["slot"]), str(value["id"]))


def parse_tip(value: Any) -> Tip | None:
    if value == "origin" or not isinstance(value, dict):
        return None
    return Tip(int(value["slot"]), str(value["id"]), int(value.get("height", 0)))


@dataclass(slots=True)
class BlockRecord:
    height: int
    slot: int  # -1 until the follower fills it in for a Byron epoch-boundary block (it has no slot)
    id: str
    tx_ids: list[str] = field(default_factory=list)
    details: list[tuple[str, bytes]] = field(default_factory=list)  # (tx id, orjson detail document)
    created: list[OutRefKey] = field(default_factory=list)  # outputs paid to a watched address
    spent: list[OutRefKey] = field(default_factory=list)  # watched outputs spent here


@dataclass
class Relevance:
    """What makes a transaction worth recording in full."""

    addresses: frozenset[str]
    policy_id: str = ""
    unspent: set[OutRefKey] = field(default_factory=set)  # watched outputs not yet spent
    submitted: set[str] = field(default_factory=set)  # tx ids submitted through the indexer


def _detail(tx: dict[str, Any], outputs: list[Any]) -> bytes:
    validity = tx.get("validityInterval") or {}
    metadata = tx.get("metadata")
    doc = {
        "inputs": [[ref["transaction"]["id"], ref["index"]] for ref in tx.get("inputs") or []],
        "outputs": [{"address": out["address"], "value": out.get("value") or {}} for out in outputs],
        "mint": tx.get("mint") or {},
        "fee": ((tx.get("fee") or {}).get("ada") or {}).get("lovelace", 0),
        "metadata": metadata.get("labels") if isinstance(metadata, dict) else None,
        "invalid_before": validity.get("invalidBefore") or 0,
        "invalid_hereafter": validity.get("invalidAfter") or 0,
        "failed": tx.get("spends") == "collaterals",
    }
    return orjson.dumps(doc)


def extract_block(block: dict[str, Any], relevance: Relevance) -> BlockRecord:
    """Summarize one Ogmios block, updating ``relevance.unspent`` as watched outputs come and go.

    This runs for every block of a catch-up: it touches only the keys it needs and converts nothing
    (the store turns hex into bytes on its own thread).
    """
    record = BlockRecord(block["height"], block.get("slot", -1), block["id"])  # Byron EBBs have no slot
    addresses, policy_id = relevance.addresses, relevance.policy_id
    unspent, submitted = relevance.unspent, relevance.submitted
    tx_ids, created = record.tx_ids, record.created
    for tx in block.get("transactions") or ():
        tx_id: str = tx["id"]
        tx_ids.append(tx_id)
        matters = tx_id in submitted
        if policy_id:
            mint = tx.get("mint")
            if mint and policy_id in mint:
                matters = True
        if tx.get("spends") == "collaterals":  # phase-2 failure: collaterals spent, collateral return created
            matters = _failed_tx(tx, record, relevance) or matters
        else:
            if unspent:
                for ref in tx.get("inputs") or ():
                    key = (ref["transaction"]["id"], ref["index"])
                    if key in unspent:
                        unspent.discard(key)
                        record.spent.append(key)
                        matters = True
            if addresses:
                for index, out in enumerate(tx.get("outputs") or ()):
                    if out["address"] in addresses:
                        key = (tx_id, index)
                        unspent.add(key)
                        created.append(key)
                        matters = True
        if matters:
            outputs = _collateral_outputs(tx) if tx.get("spends") == "collaterals" else (tx.get("outputs") or [])
            record.details.append((tx_id, _detail(tx, outputs)))
    return record


def _collateral_outputs(tx: dict[str, Any]) -> list[Any]:
    return [tx["collateralReturn"]] if tx.get("collateralReturn") else []


def _failed_tx(tx: dict[str, Any], record: BlockRecord, relevance: Relevance) -> bool:
    matters = False
    for ref in tx.get("collaterals") or ():
        key = (ref["transaction"]["id"], ref["index"])
        if key in relevance.unspent:
            relevance.unspent.discard(key)
            record.spent.append(key)
            matters = True
    ret = tx.get("collateralReturn")
    if ret and ret.get("address") in relevance.addresses:
        key = (tx["id"], len(tx.get("outputs") or ()))  # the collateral return's index follows the outputs
        relevance.unspent.add(key)
        record.created.append(key)
        matters = True
    return matters
