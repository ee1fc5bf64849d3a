"""Planning: which intents go into which new burn tx, on which lane, from which UTxOs.

- A lane is free when the batch that produced its UTxO is confirmed (at most one unconfirmed tx per lane).
- While fewer than ``burn_lanes`` lanes exist, the next batch is built from *reserve* UTxOs (custodial
  UTxOs that are no lane's and no active batch's input) with one change output per missing lane: the
  treasury is split by the burns themselves (the signer signs nothing but burns).
- A lane short of lovelace (``burn_lane_min_lovelace``) or of tokens for a full batch takes one reserve
  UTxO as an extra input (a top-up) when there is one.
- A batch is cut when ``cap`` intents wait or the oldest waited ``burn_batch_wait_s``; ``cap`` is
  ``burn_batch_max`` bounded by the signer's caps (tokens per tx, ids per request).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from common.cardano import AssetId
from common.logging import get_logger
from gateway.burns import store
from gateway.burns.metrics import ERRORS
from gateway.burns.signer import SignerIdentity
from gateway.burns.txbuild import BuiltBurn, BurnInput, BurnNotBuildable, FeeParams, build_burn_tx
from gateway.credits.ledger import BurnIntent
from gateway.web3.chain import Chain, Utxo

__all__ = [
    "GENERATION_ID",
    "Plan",
    "Reserve",
    "claimed_inputs",
    "failing_batches",
    "free_lanes",
    "new_batch",
    "rebuild",
    "reserve_utxos",
    "usable_intents",
]

log = get_logger("gateway.burns.planner")
# The signer's rule for an id: 1-128 printable ASCII characters without spaces.
GENERATION_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_RESERVE_INPUTS = 20
EXHAUSTED_LOG_EVERY_S = 60.0
_EXHAUSTED_LOGGED: dict[int, float] = {}  # lane -> when its empty treasury was last logged


@dataclass(frozen=True)
class Plan:
    lane_numbers: list[int]  # the lanes the change outputs become (the first is the batch's lane)
    inputs: list[BurnInput]
    intents: list[BurnIntent]


def usable_intents(intents: Sequence[BurnIntent], known: set[str]) -> list[BurnIntent]:
    """Intents not batched yet that the signer can take; others are logged and left in the outbox."""
    out: list[BurnIntent] = []
    for intent in intents:
        if intent.generation_id in known:
            continue
        if intent.amount != 1 or not GENERATION_ID.match(intent.generation_id):
            ERRORS.labels("plan", "unburnable_intent").inc()
            log.error("burn_intent_unburnable", generation_id=intent.generation_id[:140], amount=intent.amount,
                      hint="one burn intent must be 1 credit with a printable id; it stays in the outbox")
            continue
        out.append(intent)
    return out


def free_lanes(conn: sqlite3.Connection, release_depth: int = 1) -> tuple[list[store.Lane], list[store.Lane]]:
    """(lanes whose last tx is at least ``release_depth`` deep or final, every lane known)."""
    lanes = store.lanes(conn)
    busy = {str(r[0]) for r in conn.execute(
        "SELECT id FROM burn_batches WHERE state IN ('built', 'signed', 'submitted', 'mempool')"
        " OR (state = 'confirmed' AND depth < ?)", (release_depth,))}
    free = [lane for lane in lanes if lane.batch_id not in busy]
    return free, lanes


def failing_batches(conn: sqlite3.Connection, attempts: int) -> list[tuple[str, str, str]]:
    """Active batches that failed at least ``attempts`` times in a row: (id, state, last error)."""
    rows = conn.execute("SELECT id, state, last_error FROM burn_batches WHERE state NOT IN ('final', 'expired')"
                        " AND attempts >= ? ORDER BY created_at, id LIMIT 5", (attempts,)).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _input(u: Utxo) -> BurnInput:
    return BurnInput(u.tx_id, u.index, u.value)


async def reserve_utxos(chain: Chain, identity: SignerIdentity, conn_lanes: list[store.Lane],
                        claimed: set[tuple[str, int]]) -> list[BurnInput]:
    """Custodial UTxOs that belong to no lane and no active batch, most lovelace first."""
    lane_refs = {(lane.utxo_tx, lane.utxo_index) for lane in conn_lanes}
    utxos = await chain.utxos_at(identity.custodial_address)
    free = [u for u in utxos if (u.tx_id, u.index) not in lane_refs and (u.tx_id, u.index) not in claimed
            and not u.has_datum and not u.has_script_ref]
    free.sort(key=lambda u: (-u.value.lovelace, u.tx_id, u.index))
    return [_input(u) for u in free[:MAX_RESERVE_INPUTS]]


def new_batch(plan: Plan, identity: SignerIdentity, params: FeeParams, ttl_slot: int) -> store.NewBatch | None:
    """Build the tx for ``plan``; None (logged) when the inputs cannot pay for it."""
    asset = AssetId(identity.asset_policy_id, identity.asset_name_hex)
    tokens = sum(i.value.quantity(asset) for i in plan.inputs)
    intents = plan.intents[:tokens]
    if not intents:
        ERRORS.labels("plan", "treasury_exhausted").inc()
        now = time.monotonic()
        if now - _EXHAUSTED_LOGGED.get(plan.lane_numbers[0], -1e9) < EXHAUSTED_LOG_EVERY_S:
            return None
        _EXHAUSTED_LOGGED[plan.lane_numbers[0]] = now
        log.warning("burn_treasury_exhausted", lane=plan.lane_numbers[0], inputs=len(plan.inputs),
                    hint="fund the custodial address with $CREATE; intents wait in the outbox")
        return None
    ids = [i.generation_id for i in intents]
    try:
        built: BuiltBurn = build_burn_tx(plan.inputs, ids, identity=identity, params=params, ttl_slot=ttl_slot,
                                         lanes_out=len(plan.lane_numbers))
    except BurnNotBuildable as exc:
        ERRORS.labels("build", "not_buildable").inc()
        log.warning("burn_not_buildable", lane=plan.lane_numbers[0], error=str(exc),
                    hint="fund the custodial address with ADA or lower GATEWAY_BURN_LANES")
        return None
    from common.merkle import merkle_root

    lane_outputs = [(lane, index, coin, qty) for lane, (index, coin, qty) in
                    zip(plan.lane_numbers, built.change, strict=True)]
    return store.NewBatch(
        id=f"burn-{uuid.uuid4().hex}", lane=plan.lane_numbers[0], generation_ids=ids,
        seqs=[i.seq for i in intents], user_ids=[i.user_id for i in intents], root=merkle_root(ids).hex(),
        tx_id=built.tx_id, body=built.body, aux=built.aux, fee=built.fee, ttl_slot=built.ttl_slot,
        inputs=list(built.inputs), lane_outputs=lane_outputs)


def rebuild(old: store.Batch, inputs: list[BurnInput], identity: SignerIdentity, params: FeeParams,
            ttl_slot: int) -> tuple[store.NewBatch, BuiltBurn]:
    """The same ids, in the same order, from the same inputs with a new TTL (after expiry)."""
    built = build_burn_tx(inputs, old.generation_ids, identity=identity, params=params, ttl_slot=ttl_slot,
                          lanes_out=len(old.lane_outputs))
    lane_outputs = [(lane, index, coin, qty) for (lane, *_), (index, coin, qty) in
                    zip(old.lane_outputs, built.change, strict=True)]
    batch = store.NewBatch(
        id=f"burn-{uuid.uuid4().hex}", lane=old.lane, generation_ids=old.generation_ids, seqs=[], user_ids=[],
        root=old.root, tx_id=built.tx_id, body=built.body, aux=built.aux, fee=built.fee, ttl_slot=built.ttl_slot,
        inputs=list(built.inputs), lane_outputs=lane_outputs, supersedes=old.id)
    return batch, built


class Reserve:
    """Reserve UTxOs, listed from the chain at most once per round, each handed out once."""

    def __init__(self, chain: Chain, identity: SignerIdentity, lanes: list[store.Lane],
                 claimed: set[tuple[str, int]]) -> None:
        self.chain, self.identity, self.lanes, self.claimed = chain, identity, lanes, claimed
        self._left: list[BurnInput] | None = None

    async def _load(self) -> list[BurnInput]:
        if self._left is None:
            self._left = await reserve_utxos(self.chain, self.identity, self.lanes, self.claimed)
        return self._left

    async def take(self) -> BurnInput | None:
        left = await self._load()
        return left.pop(0) if left else None

    async def take_all(self) -> list[BurnInput]:
        left = await self._load()
        taken, left[:] = list(left), []
        return taken


def claimed_inputs(conn: sqlite3.Connection) -> set[tuple[str, int]]:
    claimed: set[tuple[str, int]] = set()
    for (raw,) in conn.execute("SELECT inputs FROM burn_batches WHERE state IN ('built', 'signed', 'submitted',"
                               " 'mempool', 'confirmed')").fetchall():
        claimed.update((str(t), int(i)) for t, i in json.loads(raw))
    return claimed
