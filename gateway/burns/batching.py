"""New burn batches: the outbox, in order, onto the free lanes this replica leases.

Step 4 of the burner's round (``gateway.burns.burner``). Every read of the outbox, the lanes and the
claimed UTxOs happens under one cross-replica lock (``PLAN_LOCK``), so two replicas never batch the same
intent nor spend the same UTxO; every write goes through the burner's fenced writer, so a replica that
lost a lane's lease cannot add a batch to it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from common.cardano import AssetId, Value
from common.logging import get_logger
from gateway.burns import planner, store
from gateway.burns.leases import LaneLeases
from gateway.burns.metrics import BATCHES, ERRORS, LANES
from gateway.burns.signer import SignerIdentity
from gateway.burns.txbuild import BurnInput, FeeParams
from gateway.credits.ledger import BurnIntent, Ledger
from gateway.lib.db import Database
from gateway.settings import GatewaySettings
from gateway.web3.chain import Chain

__all__ = ["CRASH_ENV", "PLAN_LOCK", "Batcher", "FencedWrite", "crash_point"]

log = get_logger("gateway.burns")
CRASH_ENV = "CREATORPASS_TEST_BURN_CRASH_AT"
PLAN_LOCK = "creatorpass:burns:plan"
# The burner's writer: ``fn`` in one transaction that first renews this replica's lease of the lane.
FencedWrite = Callable[[int, Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


def crash_point(step: str) -> None:
    """Test-only: ``os._exit`` right after ``step`` was persisted when ``CRASH_ENV`` names it."""
    if os.environ.get(CRASH_ENV) == step:
        log.warning("burn_test_crash", step=step)
        os._exit(137)


class Batcher:
    def __init__(self, settings: GatewaySettings, db: Database, ledger: Ledger, chain: Chain, leases: LaneLeases,
                 write: FencedWrite, *, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.db, self.ledger, self.chain = settings, db, ledger, chain
        self.leases, self.write, self.clock = leases, write, clock

    async def plan(self, identity: SignerIdentity, params: FeeParams, ttl: int) -> None:
        """New batches on this replica's free lanes, under the cross-replica planning lock."""
        held = self.leases.held
        if not held:
            return
        async with self.db.lock(PLAN_LOCK):
            await self._plan(identity, params, ttl, held)

    async def _plan(self, identity: SignerIdentity, params: FeeParams, ttl: int, held: set[int]) -> None:
        cap = max(1, min(self.settings.burn_batch_max, identity.batch_cap))
        release = max(1, min(self.settings.burn_lane_release_depth, self.settings.burn_confirmations))
        free, lanes = await self.db.read(lambda c: planner.free_lanes(c, release))
        LANES.set(len(lanes))
        free = [lane for lane in free if lane.lane in held]
        existing = {lane.lane for lane in lanes}
        # Lanes not created yet: a split builds them all; it is this replica's when one of them is its own.
        absent = [n for n in range(self.settings.burn_lanes) if n not in existing]
        missing = len(absent) if any(n in held for n in absent) else 0
        if not free and not missing:
            return
        cursor = await self.db.read(store.max_item_seq)
        wanted = cap * (len(free) + 1)
        intents = await self.ledger.outbox(after_seq=cursor, limit=min(1000, wanted))
        known = await self.db.read(lambda c: store.known_items(c, [i.generation_id for i in intents]))
        pending = planner.usable_intents(intents, known)
        if not pending:
            return
        if len(pending) < cap and pending[0].created_at > self.clock() - self.settings.burn_batch_wait_s:
            return
        claimed = await self.db.read(planner.claimed_inputs)
        reserve = planner.Reserve(self.chain, identity, lanes, claimed)
        # Batches take the outbox strictly in order (what one batch could not take goes to the next), so
        # the cursor (the highest batched seq) never passes an intent that was left behind.
        if missing:
            split = await reserve.take_all()
            if split:
                numbers = sorted(absent, key=lambda n: (n not in held, n))  # the batch's lane (first) is ours
                pending = await self._emit(planner.Plan(numbers, split, pending[:cap]), pending, identity, params, ttl)
        if free and pending:
            refs = [(lane.utxo_tx, lane.utxo_index) for lane in free]
            on_chain = {(u.tx_id, u.index): u for u in await self.chain.utxos_by_ref(refs)}
            for lane in free:
                utxo = on_chain.get((lane.utxo_tx, lane.utxo_index))
                if utxo is None:
                    await self._lane_missing(lane)
                    continue
                if not pending:
                    continue
                inputs = [BurnInput(utxo.tx_id, utxo.index, utxo.value)]
                inputs += await self._top_up(identity, utxo.value, cap, reserve)
                pending = await self._emit(planner.Plan([lane.lane], inputs, pending[:cap]), pending, identity,
                                           params, ttl)

    async def _lane_missing(self, lane: store.Lane) -> None:
        """A lane whose final tx's output is gone (spent outside the burner, or a rollback deeper than
        finality) is dropped, so the next split recreates it from the reserve."""
        states = await self.db.read(lambda c: store.select_batches(c, "id = ?", (lane.batch_id,)))
        if states and states[0].state == "final":
            await self.write(lane.lane, lambda c: c.execute("DELETE FROM burn_lanes WHERE lane = ?", (lane.lane,)))
            ERRORS.labels("plan", "lane_lost").inc()
            log.error("burn_lane_lost", lane=lane.lane, utxo=f"{lane.utxo_tx}#{lane.utxo_index}",
                      hint="the lane's UTxO is no longer on chain; it is recreated from the reserve")

    async def _emit(self, plan: planner.Plan, pending: list[BurnIntent], identity: SignerIdentity,
                    params: FeeParams, ttl: int) -> list[BurnIntent]:
        """Build and persist one batch; returns the intents still waiting (the head of ``pending`` it took
        is removed; all of it stays when nothing could be built)."""
        batch = planner.new_batch(plan, identity, params, ttl)
        if batch is None:
            return pending
        now = self.clock()
        await self.write(batch.lane, lambda c: store.insert_batch(c, batch, now))
        BATCHES.labels("built").inc()
        log.info("burn_built", batch=batch.id, lane=batch.lane, count=len(batch.generation_ids),
                 tx_id=batch.tx_id, lanes_out=len(batch.lane_outputs))
        crash_point("built")
        return pending[len(batch.generation_ids):]

    async def _top_up(self, identity: SignerIdentity, value: Value, cap: int,
                      reserve: planner.Reserve) -> list[BurnInput]:
        """One reserve UTxO for a lane short of lovelace or of tokens for a full batch (when there is one)."""
        asset = AssetId(identity.asset_policy_id, identity.asset_name_hex)
        if value.lovelace >= self.settings.burn_lane_min_lovelace and value.quantity(asset) >= cap:
            return []
        pick = await reserve.take()
        return [pick] if pick is not None else []
