"""What the burns endpoints answer: a generation's receipt, the public batch list and its totals."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common import merkle
from gateway.burns import store
from gateway.burns.signer import SignerIdentity
from gateway.lib.db import Database
from gateway.lib.dialect import table_names
from gateway.lib.errors import NotFound
from gateway.web3.chain import Chain, TxState

__all__ = ["BurnService", "ReceiptPending", "build_receipt"]

RECEIPT_VERSION = 1


class ReceiptPending(NotFound):
    code = "receipt_pending"


@dataclass
class BurnService:
    db: Database
    chain: Chain | None = None
    identity: SignerIdentity | None = None  # filled by the burner once it read it
    chain_timeout_s: float = 3.0
    find_chain: Callable[[], Chain | None] | None = None  # the shared Chain, when this service has none

    async def receipt(self, generation_id: str, *, owner: str, user_id: str) -> dict[str, Any]:
        found = await self.db.read(lambda c: _owned_item(c, generation_id, owner, user_id))
        if found is None:
            raise NotFound(f"no generation {generation_id!r}", code="generation_not_found")
        if not isinstance(found, store.Batch):
            raise ReceiptPending(f"generation {generation_id!r} is not in a burn batch yet; it is burned within"
                                 " a few minutes of delivery")
        receipt = build_receipt(found, generation_id)
        if self.identity is not None:
            receipt["asset"] = {"policy_id": self.identity.asset_policy_id, "asset_name": self.identity.asset_name_hex}
            receipt["sink_mode"] = self.identity.sink_mode
        await self._live_depth(receipt)
        return receipt

    async def _live_depth(self, receipt: dict[str, Any]) -> None:
        chain = self.chain or (self.find_chain() if self.find_chain is not None else None)
        if chain is None or receipt["state"] not in ("confirmed", "final", "mempool", "submitted"):
            return
        try:
            status = await asyncio.wait_for(chain.tx_status(receipt["tx_id"]), self.chain_timeout_s)
        except Exception:  # the stored depth stands; a receipt never fails for a slow indexer
            return
        if status.state == TxState.CONFIRMED:
            receipt["depth"] = status.depth
            receipt["block"] = {"slot": status.block_slot, "height": status.block_height}

    async def page(self, *, limit: int, before: str | None) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> tuple[list[store.Batch], dict[str, int], int]:
            cursor = store.position_of(conn, before) if before else None
            if before and cursor is None:
                raise NotFound(f"no burn batch {before!r}", code="burn_batch_not_found")
            return store.page(conn, cursor, limit + 1), store.totals(conn), 0

        batches, totals, _ = await self.db.read(read)
        more = len(batches) > limit
        batches = batches[:limit]
        return {
            "batches": [_public(b) for b in batches],
            "next": batches[-1].id if more and batches else None,
            "totals": totals,
        }


def _owned_item(conn: sqlite3.Connection, generation_id: str, owner: str, user_id: str) -> store.Batch | str | None:
    base = generation_id.split(".", 1)[0]
    owned_generation = False
    if "generations" in table_names(conn):
        row = conn.execute("SELECT owner FROM generations WHERE id = ?", (base,)).fetchone()
        if row is not None:
            if row[0] != owner:
                return None
            owned_generation = True
    item = store.item(conn, generation_id)
    if item is None:
        intent = conn.execute("SELECT user_id FROM burn_intents WHERE generation_id = ?", (generation_id,)).fetchone()
        if intent is None or not (owned_generation or (user_id and intent[0] == user_id)):
            return None
        return "pending"
    batch_id, _idx, item_user = item
    if not owned_generation and (not user_id or item_user != user_id):
        return None
    return store.select_batches(conn, "id = ?", (batch_id,))[0]


def build_receipt(batch: store.Batch, generation_id: str) -> dict[str, Any]:
    """Everything needed to check the burn without this gateway (gateway/burns/README.md)."""
    index = batch.generation_ids.index(generation_id)
    steps = merkle.proof(batch.generation_ids, index)
    return {
        "version": RECEIPT_VERSION,
        "generation_id": generation_id,
        "tx_id": batch.tx_id,
        "leaf": merkle.leaf_hash(generation_id).hex(),
        "index": index,
        "proof": merkle.proof_to_json(steps),
        "root": batch.root,
        "count": batch.count,
        "block": {"slot": batch.block_slot, "height": batch.block_height},
        "depth": batch.depth,
        "state": batch.state,
    }


def _public(b: store.Batch) -> dict[str, Any]:
    return {"id": b.id, "tx_id": b.tx_id, "count": b.count, "root": b.root, "state": b.state,
            "lane": b.lane, "fee": b.fee, "block": {"slot": b.block_slot, "height": b.block_height},
            "depth": b.depth, "supersedes": b.supersedes or None, "created_at": b.created_at}
