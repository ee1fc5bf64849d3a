"""The burner: drains the outbox into burn txs and follows each one until it is final and settled.

One task, one planning round at a time (so two steps never race for a UTxO or a batch); with several
replicas, each drives only the lanes it leases (``gateway.burns.leases``: fenced writes, plans under a
cross-replica lock). A round:

1. renew this replica's lane leases; read the signer's identity (cached a minute) and the chain's tip;
2. ``built`` batches are signed, ``signed`` ones submitted — each result persisted before the next step;
3. in-flight batches are followed with ``WatchTransactions`` (the stream's first message per tx is its
   status; the round then waits on the stream for a change, up to ``burn_poll_interval_s``): mempool,
   confirmed at depth d, final at ``burn_confirmations`` (then ``settle_burn`` on the ledger); a tx
   rolled back or unknown again is resubmitted with the same bytes while its TTL holds, rebuilt from
   the same inputs (the signer's re-sign rule) once the tip passed it;
4. free lanes take new batches from the outbox (``gateway.burns.batching``);
5. the treasury reading feeds the ``TreasuryGuard``.

A failing signer or indexer ends the round; the next waits with exponential backoff (capped at
``burn_retry_max_s``); a failing batch records its error and its own next attempt. Nothing is ever
dropped: an intent stays in the outbox until its burn is final.

Test-only: ``CREATORPASS_TEST_BURN_CRASH_AT=<built|sign_reply|signed|submitted|confirmed>`` makes the
process ``os._exit`` right after that state was persisted (``sign_reply``: after the signer answered,
before its witnesses are stored); off unless the variable is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from common.cardano import AssetId
from common.logging import get_logger
from gateway.burns import planner, store
from gateway.burns.batching import CRASH_ENV, Batcher, crash_point
from gateway.burns.leases import LaneLeases, LeaseLost
from gateway.burns.metrics import BATCHES, ERRORS, IN_FLIGHT, LANES_LEASED, TOKENS_BURNED
from gateway.burns.signer import (
    SignerClient,
    SignerError,
    SignerIdentity,
    SignerRefusal,
    SignerRejected,
    SignerUnavailable,
)
from gateway.burns.treasury import TreasuryGuard
from gateway.burns.txbuild import BurnInput, BurnNotBuildable, FeeParams, signed_tx
from gateway.credits.ledger import Ledger
from gateway.lib.db import Database
from gateway.lib.errors import GatewayError
from gateway.settings import GatewaySettings
from gateway.web3.chain import Chain, ChainTip, LedgerRefusal, TxNotFound, TxState, TxStatus
from gateway.web3.errors import ChainError, ChainUnavailable

__all__ = ["CRASH_ENV", "Burner"]

log = get_logger("gateway.burns")
T = TypeVar("T")
IDENTITY_TTL_S = 60.0
WATCH_CHUNK = 256
# Refusals after which the same bytes can never be signed: build them again with a fresh TTL.
REBUILD_REFUSALS = {"TTL_EXPIRED", "TTL_TOO_FAR", "SLOT_OUT_OF_SYNC"}


class Burner:
    def __init__(self, settings: GatewaySettings, db: Database, ledger: Ledger, chain: Chain, signer: SignerClient,
                 guard: TreasuryGuard, *, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.db, self.ledger, self.chain, self.signer = settings, db, ledger, chain, signer
        self.guard = guard
        self.clock = clock
        self._identity: tuple[SignerIdentity, float] | None = None
        self._params: FeeParams | None = None
        self.rounds = 0
        self.last_error = ""
        self.on_identity: Callable[[SignerIdentity], None] | None = None
        self.leases = LaneLeases(db, settings.burn_lanes, settings.burn_lease_s, clock)
        self.batcher = Batcher(settings, db, ledger, chain, self.leases, self._write, clock=clock)

    # -- the loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        delay_s = 0.0
        while True:
            try:
                await self.round()
                delay_s, self.last_error = 0.0, ""
            except asyncio.CancelledError:
                raise
            except LeaseLost as lost:  # another replica drives that lane now: go on with the others
                self.leases.drop(lost.lane)
                log.warning("burn_lane_lease_lost", lane=lost.lane, replica=self.leases.me)
            except Exception as exc:  # every failure backs off: never a tight loop, never a dead burner
                delay_s = min(max(delay_s * 2, 0.5), self.settings.burn_retry_max_s)
                self.last_error = f"{type(exc).__name__}: {exc}"
                expected = isinstance(exc, (SignerError, ChainError, ChainUnavailable))
                ERRORS.labels("round", "unavailable" if isinstance(exc, (SignerUnavailable, ChainUnavailable))
                              else "error").inc()
                log.warning("burn_round_failed", error=self.last_error[:500], retry_in_s=delay_s,
                            exc_info=not expected,
                            hint="check that the signer (GATEWAY_SIGNER_TARGET) and the indexer "
                                 "(GATEWAY_INDEXER_TARGET) are up; intents wait in the outbox")
                self._identity = None
                await asyncio.sleep(delay_s)

    async def round(self) -> None:
        await self.refresh_leases()
        identity = await self.identity()
        tip = await self.chain.tip()
        params = await self.fee_params()
        slot = self.current_slot(identity, tip)
        for batch in await self.db.read(lambda c: store.select_batches(c, "state IN ('built', 'signed')"
                                                                          + store.ORDER)):
            if batch.next_attempt_at > self.clock() or batch.lane not in self.leases.held:
                continue
            try:
                if batch.state == "built":
                    await self.sign(batch, identity, params, slot)
                else:
                    await self.submit(batch, tip)
            except (SignerRejected, ChainError, TxNotFound) as exc:  # this batch's problem, not the round's
                await self._fail(batch, batch.state, "error", f"{type(exc).__name__}: {exc}")
        await self.follow(identity, params, tip, slot)
        await self.batcher.plan(identity, params, self.ttl_for(identity, slot))
        await self.refresh_treasury(identity)
        self.rounds += 1

    async def refresh_leases(self) -> None:
        taken, released = await self.leases.refresh()
        LANES_LEASED.set(len(self.leases.held))
        for lane, previous in taken:
            log.info("burn_lane_leased", lane=lane, replica=self.leases.me, previous_owner=previous or None)
        if released:
            log.info("burn_lanes_released", lanes=released, replica=self.leases.me,
                     hint="another burner joined: lanes are shared out again")

    async def _write(self, lane: int, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` in one write that first renews this replica's lease of ``lane`` (or raises LeaseLost)."""
        now = self.clock()

        def fenced(conn: sqlite3.Connection) -> T:
            self.leases.fence(conn, lane, now)
            return fn(conn)

        return await self.db.write(fenced)

    async def identity(self) -> SignerIdentity:
        now = self.clock()
        if self._identity is None or now - self._identity[1] > IDENTITY_TTL_S:
            self._identity = (await self.signer.identity(), now)
            if self.on_identity is not None:
                self.on_identity(self._identity[0])
        return self._identity[0]

    @property
    def identity_cached(self) -> SignerIdentity | None:
        return None if self._identity is None else self._identity[0]

    async def fee_params(self) -> FeeParams:
        p = await self.chain.protocol_params()
        self._params = FeeParams(p.min_fee_a, p.min_fee_b, p.coins_per_utxo_byte, p.max_tx_size)
        return self._params

    def current_slot(self, identity: SignerIdentity, tip: ChainTip) -> int:
        """The slot by the signer's clock (it refuses a current_slot far from it), never behind the tip."""
        if self._identity is None or not identity.clock_slot:
            return tip.slot
        return max(tip.slot, identity.clock_slot + int(self.clock() - self._identity[1]))

    def ttl_for(self, identity: SignerIdentity, slot: int) -> int:
        return slot + max(2, min(self.settings.burn_ttl_slots, identity.caps.max_ttl_slots or 10**9))

    def backoff_s(self, attempts: int) -> float:
        return float(min(self.settings.burn_retry_max_s, 0.5 * 2 ** min(attempts, 16)))

    async def _set(self, batch: store.Batch, state: str, **fields: object) -> None:
        now = self.clock()
        await self._write(batch.lane, lambda c: store.set_state(c, batch.id, state, now, **fields))

    async def _insert(self, batch: store.NewBatch) -> None:
        now = self.clock()
        await self._write(batch.lane, lambda c: store.insert_batch(c, batch, now))

    async def _fail(self, batch: store.Batch, step: str, kind: str, error: str) -> None:
        now = self.clock()
        retry_at = now + self.backoff_s(batch.attempts)
        await self._write(batch.lane, lambda c: store.note_failure(c, batch.id, error, retry_at, now))
        ERRORS.labels(step, kind).inc()
        log.warning("burn_step_failed", step=step, kind=kind, batch=batch.id, tx_id=batch.tx_id,
                    attempts=batch.attempts + 1, retry_in_s=round(retry_at - now, 1), error=error[:300])

    # -- built → signed → submitted -----------------------------------------------------------------

    async def sign(self, batch: store.Batch, identity: SignerIdentity, params: FeeParams, slot: int) -> None:
        unsigned = b"\x84" + batch.body + b"\xa0\xf5" + batch.aux
        try:
            sig = await self.signer.sign_burn(unsigned, batch.generation_ids, request_id=batch.id, current_slot=slot)
        except SignerRefusal as refusal:
            if refusal.reason in REBUILD_REFUSALS:
                await self._refresh_built(batch, identity, params, slot, refusal)
            else:
                self._identity = None  # caps may have changed: read them again next round
                await self._fail(batch, "sign", "refused", f"{refusal.reason}: {refusal.detail}")
            return
        crash_point("sign_reply")  # the signer recorded it, we did not: the restart's identical retry replays it
        if sig.tx_id != batch.tx_id:
            await self._fail(batch, "sign", "mismatch", f"the signer signed {sig.tx_id}, not {batch.tx_id}")
            return
        now = self.clock()
        await self._write(batch.lane, lambda c: store.set_state(c, batch.id, "signed", now,
                                                                witnesses=sig.witness_set_cbor))
        BATCHES.labels("signed").inc()
        crash_point("signed")
        tip = await self.chain.tip()
        signed = await self.db.read(lambda c: store.select_batches(c, "id = ?", (batch.id,)))
        await self.submit(signed[0], tip)

    async def _refresh_built(self, batch: store.Batch, identity: SignerIdentity, params: FeeParams, slot: int,
                             refusal: SignerRefusal) -> None:
        """A never-signed batch whose bytes the signer cannot take (old TTL): same inputs, fresh TTL."""
        try:
            inputs = await self._inputs_of(batch)
            _, built = planner.rebuild(batch, inputs, identity, params, self.ttl_for(identity, slot))
        except (BurnNotBuildable, LookupError) as exc:
            await self._fail(batch, "sign", "refused", f"{refusal.reason}; cannot rebuild: {exc}")
            return
        outputs = [(lane, index, coin, qty) for (lane, *_), (index, coin, qty) in
                   zip(batch.lane_outputs, built.change, strict=True)]
        now = self.clock()
        await self._write(batch.lane, lambda c: store.replace_built(c, batch.id, built.tx_id, built.body, built.aux,
                                                                    built.fee, built.ttl_slot, outputs, now))
        log.info("burn_rebuilt_before_signing", batch=batch.id, reason=refusal.reason, tx_id=built.tx_id)
        # Counted as a failed attempt: a signer that keeps refusing fresh bytes is retried with backoff.
        await self._fail(batch, "sign", "refused_rebuilt", f"{refusal.reason}: {refusal.detail}")

    async def _inputs_of(self, batch: store.Batch) -> list[BurnInput]:
        found = await self.chain.utxos_by_ref(batch.inputs)
        if len(found) != len(batch.inputs):
            raise LookupError(f"{len(batch.inputs) - len(found)} of the batch's inputs are no longer unspent")
        return [BurnInput(u.tx_id, u.index, u.value) for u in found]

    async def submit(self, batch: store.Batch, tip: ChainTip) -> None:
        identity = await self.identity()
        assert batch.witnesses is not None  # state 'signed' or later always has them
        tx = signed_tx(batch.body, batch.aux, batch.witnesses, identity.policy_script_cbor,
                       identity.sink_mode == "mint")
        try:
            await self.chain.submit(tx)
        except LedgerRefusal as refusal:
            status = await self.chain.tx_status(batch.tx_id)
            if status.state not in (TxState.MEMPOOL, TxState.CONFIRMED):
                await self._fail(batch, "submit", "ledger", f"{refusal.code} {refusal.reason}")
                return
        now = self.clock()
        if batch.state == "signed":
            await self._write(batch.lane, lambda c: store.set_state(c, batch.id, "submitted", now, next_attempt_at=0))
            BATCHES.labels("submitted").inc()
            crash_point("submitted")
        else:
            await self._write(batch.lane, lambda c: store.set_state(c, batch.id, batch.state, now, next_attempt_at=0))
            BATCHES.labels("resubmitted").inc()
            log.info("burn_resubmitted", batch=batch.id, tx_id=batch.tx_id, ttl_slot=batch.ttl_slot,
                     tip_slot=tip.slot)

    # -- following --------------------------------------------------------------------------------

    async def statuses(self, tx_ids: list[str], wait_s: float) -> dict[str, TxStatus]:
        """Each tx's status from WatchTransactions (its first message per tx), then, on the last stream,
        up to ``wait_s`` for the first change (so a round wakes as soon as something happened)."""
        out: dict[str, TxStatus] = {}
        for start in range(0, len(tx_ids), WATCH_CHUNK):
            chunk = tx_ids[start:start + WATCH_CHUNK]
            last = start + WATCH_CHUNK >= len(tx_ids)
            stream = aiter(self.chain.watch(chunk, until_depth=self.settings.burn_confirmations))
            try:
                seen: set[str] = set()
                while len(seen) < len(chunk):
                    status = await asyncio.wait_for(anext(stream), self.settings.burn_call_timeout_s)
                    seen.add(status.tx_id)
                    out[status.tx_id] = status
                if last:
                    with contextlib.suppress(TimeoutError):
                        status = await asyncio.wait_for(anext(stream), wait_s)
                        out[status.tx_id] = status
            except (StopAsyncIteration, TimeoutError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
        return out

    async def follow(self, identity: SignerIdentity, params: FeeParams, tip: ChainTip, slot: int) -> None:
        held = self.leases.held
        batches = [b for b in await self.db.read(lambda c: store.select_batches(
            c, f"state IN {store.IN_FLIGHT_STATES!r}" + store.ORDER)) if b.lane in held]
        IN_FLIGHT.set(len(batches))
        if not batches:
            await asyncio.sleep(self.settings.burn_poll_interval_s)
            return
        found = await self.statuses([b.tx_id for b in batches], self.settings.burn_poll_interval_s)
        tip = await self.chain.tip()
        for batch in batches:
            status = found.get(batch.tx_id)
            if status is None:
                continue
            if status.state == TxState.CONFIRMED:
                await self._confirmed(batch, status)
            elif status.state == TxState.MEMPOOL:
                if batch.state != "mempool":
                    await self._set(batch, "mempool", depth=0)
            else:
                await self._lost(batch, status, identity, params, tip, slot)

    async def _confirmed(self, batch: store.Batch, status: TxStatus) -> None:
        now = self.clock()
        if status.depth >= self.settings.burn_confirmations:
            if batch.next_attempt_at > self.clock():
                return
            try:
                await self.ledger.settle_burn(key=f"burn:{batch.tx_id}", generation_ids=batch.generation_ids,
                                              tx_id=batch.tx_id)
            except GatewayError as exc:  # e.g. settled by another burn: an operator must look; the rest goes on
                await self._fail(batch, "settle", "ledger", f"{type(exc).__name__}: {exc}")
                return
            await self._write(batch.lane, lambda c: store.set_state(c, batch.id, "final", now, depth=status.depth,
                                                                    block_slot=status.block_slot,
                                                                    block_height=status.block_height, final_at=now))
            BATCHES.labels("final").inc()
            TOKENS_BURNED.inc(batch.count)
            log.info("burn_final", batch=batch.id, tx_id=batch.tx_id, count=batch.count, depth=status.depth)
            return
        if (batch.state, batch.depth, batch.block_height) == ("confirmed", status.depth, status.block_height):
            return
        await self._write(batch.lane, lambda c: store.set_state(c, batch.id, "confirmed", now, depth=status.depth,
                                                                block_slot=status.block_slot,
                                                                block_height=status.block_height))
        if batch.state != "confirmed":
            BATCHES.labels("confirmed").inc()
            crash_point("confirmed")

    async def _lost(self, batch: store.Batch, status: TxStatus, identity: SignerIdentity, params: FeeParams,
                    tip: ChainTip, slot: int) -> None:
        """Rolled back, or unknown to the indexer: resubmit the same bytes, or rebuild once expired."""
        if batch.next_attempt_at > self.clock():
            return
        if tip.slot < batch.ttl_slot:
            if batch.state == "confirmed":
                log.warning("burn_rolled_back", batch=batch.id, tx_id=batch.tx_id, status=status.state)
            await self.submit(batch, tip)
            return
        try:
            inputs = await self._inputs_of(batch)
            new, _ = planner.rebuild(batch, inputs, identity, params, self.ttl_for(identity, slot))
        except (BurnNotBuildable, LookupError) as exc:
            await self._fail(batch, "rebuild", "not_buildable", f"expired at slot {batch.ttl_slot}: {exc}")
            return
        await self._insert(new)
        BATCHES.labels("rebuilt").inc()
        log.warning("burn_expired_rebuilt", batch=batch.id, tx_id=batch.tx_id, new_batch=new.id, new_tx_id=new.tx_id)

    # -- treasury ------------------------------------------------------------------------------------

    async def refresh_treasury(self, identity: SignerIdentity) -> None:
        asset = AssetId(identity.asset_policy_id, identity.asset_name_hex)
        balance = await self.chain.balance(identity.custodial_address, asset)
        totals = await self.db.read(store.totals)
        self.guard.update(tokens_free=balance.quantity - totals["pending"], lovelace=balance.lovelace)
