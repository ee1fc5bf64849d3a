"""Burn lanes leased to replicas: any number of gateways run the burner, each lane driven by one at a time.

A lane's batches (sign, submit, follow, settle, rebuild) are driven only by the replica holding the
lane's lease in ``burn_lane_leases``. Each burner round:

1. beats its heart in ``burn_burners`` (a row per running burner);
2. reads the leases and the burners, and asks the database which of their replicas still run
   (``Database.replica_alive``: on PostgreSQL a killed process's liveness lock is gone at once);
3. in one write, keeps its fair share — ``ceil(lanes / live burners)`` — renewing the leases it holds,
   releasing the extra ones (idle lanes first) when more burners joined, and taking lanes that nobody
   holds, whose holder is dead, or whose lease expired (``burn_lease_s`` without renewal: a replica
   alive but stuck).

Fencing: every write the burner makes about a batch first renews the lease of the batch's lane in the
same transaction (:func:`fence`), and fails with :class:`LeaseLost` when this replica no longer holds
it — so a replica that lost its lane (stuck past its lease, partitioned from the database) can never
move a batch another replica took over. What it may still do outside the database is harmless by
construction: the signer replays a request id's signature, a resubmitted tx has the same id, and the
ledger settles a burn key once.

New batches (which intents, which reserve UTxOs) are planned under one cross-replica lock
(``Database.lock``), so two replicas never batch the same intent or spend the same UTxO.

On SQLite one process owns the database: it is the only live burner and leases every lane; the leases
of a process that exited are taken over at once.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.burns import store
from gateway.lib.db import Database

__all__ = ["LaneLeases", "LeaseLost", "fence"]

class LeaseLost(Exception):
    """This replica no longer holds the lease of ``lane``: another replica drives its batches."""

    def __init__(self, lane: int) -> None:
        super().__init__(f"the lease of burn lane {lane} is no longer this replica's")
        self.lane = lane


def fence(conn: sqlite3.Connection, lane: int, owner: str, now: float, lease_s: float) -> None:
    """Renew ``owner``'s lease of ``lane`` inside the caller's transaction, or raise :class:`LeaseLost`."""
    cur = conn.execute("UPDATE burn_lane_leases SET expires_at = ? WHERE lane = ? AND owner = ? AND expires_at > ?",
                       (now + lease_s, lane, owner, now))
    if cur.rowcount != 1:
        raise LeaseLost(lane)


@dataclass(frozen=True)
class Snapshot:
    leases: dict[int, tuple[str, float]]  # lane -> (owner, expires_at)
    burners: dict[str, float]  # replica -> seen_at
    universe: set[int]  # every lane number in use or configured


def _snapshot(conn: sqlite3.Connection, configured: int) -> Snapshot:
    leases = {int(r[0]): (str(r[1]), float(r[2])) for r in
              conn.execute("SELECT lane, owner, expires_at FROM burn_lane_leases").fetchall()}
    burners = {str(r[0]): float(r[1]) for r in conn.execute("SELECT replica, seen_at FROM burn_burners").fetchall()}
    universe = set(range(configured)) | {lane.lane for lane in store.lanes(conn)} | _busy_lanes(conn)
    return Snapshot(leases, burners, universe)


def _busy_lanes(conn: sqlite3.Connection) -> set[int]:
    marks = ",".join("?" * len(store.ACTIVE_STATES))
    return {int(r[0]) for r in conn.execute(
        f"SELECT DISTINCT lane FROM burn_batches WHERE state IN ({marks})", store.ACTIVE_STATES).fetchall()}  # noqa: S608


def _claim(conn: sqlite3.Connection, me: str, now: float, lease_s: float, universe: set[int], share: int,
           dead: set[str]) -> tuple[set[int], list[tuple[int, str]], list[int]]:
    """Keep ``share`` lanes: (lanes held now, (lane taken, its previous owner or ''), lanes released). Runs in
    one write."""
    rows = {int(r[0]): (str(r[1]), float(r[2])) for r in
            conn.execute("SELECT lane, owner, expires_at FROM burn_lane_leases").fetchall()}
    mine = {lane for lane, (owner, expires) in rows.items() if owner == me and expires > now}
    released: list[int] = []
    if len(mine) > share:
        busy = _busy_lanes(conn)
        released = sorted(mine, key=lambda lane: (lane in busy, -lane))[:len(mine) - share]
        for lane in released:
            conn.execute("DELETE FROM burn_lane_leases WHERE lane = ? AND owner = ?", (lane, me))
        mine -= set(released)
    taken: list[tuple[int, str]] = []
    renew = set(mine)
    for lane in sorted(universe):
        if len(mine) >= share:
            break
        if lane in mine:
            continue
        row = rows.get(lane)
        if row is None or row[1] <= now or row[0] in dead or row[0] == me:
            conn.execute("INSERT INTO burn_lane_leases (lane, owner, expires_at, taken_at) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (lane) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,"
                         " taken_at = excluded.taken_at", (lane, me, now + lease_s, now))
            mine.add(lane)
            if row is None or row[0] != me:
                taken.append((lane, row[0] if row else ""))
    for lane in sorted(renew):
        conn.execute("UPDATE burn_lane_leases SET expires_at = ? WHERE lane = ? AND owner = ?",
                     (now + lease_s, lane, me))
    if dead:
        marks = ",".join("?" * len(dead))
        conn.execute(f"DELETE FROM burn_burners WHERE replica IN ({marks})", sorted(dead))  # noqa: S608
    conn.execute("DELETE FROM burn_burners WHERE seen_at < ?", (now - 10 * lease_s,))
    return mine, taken, released


@dataclass
class LaneLeases:
    """This replica's lane leases (``held``), refreshed once per burner round."""

    db: Database
    lanes: int  # GATEWAY_BURN_LANES
    lease_s: float
    clock: Callable[[], float]
    held: set[int] = field(default_factory=set)

    @property
    def me(self) -> str:
        return self.db.replica_id

    async def refresh(self) -> tuple[list[tuple[int, str]], list[int]]:
        """Beat, read, keep the fair share. Returns ((lane taken, previous owner or ''), lanes released)."""
        me, now = self.me, self.clock()
        await self.db.write(lambda c: c.execute(
            "INSERT INTO burn_burners (replica, seen_at) VALUES (?, ?) ON CONFLICT (replica) DO UPDATE"
            " SET seen_at = excluded.seen_at", (me, now)))
        snap = await self.db.read(lambda c: _snapshot(c, self.lanes))
        others = ({owner for owner, _ in snap.leases.values()} | set(snap.burners)) - {me}
        alive = {replica for replica in others if await self.db.replica_alive(replica)}
        live_burners = {me} | {r for r, seen in snap.burners.items() if r in alive and seen > now - self.lease_s}
        share = max(1, math.ceil(len(snap.universe) / len(live_burners)))
        dead = others - alive
        held, taken, released = await self.db.write(
            lambda c: _claim(c, me, now, self.lease_s, snap.universe, share, dead))
        self.held = held
        return taken, released

    def fence(self, conn: sqlite3.Connection, lane: int, now: float) -> None:
        if lane not in self.held:
            raise LeaseLost(lane)
        fence(conn, lane, self.me, now, self.lease_s)

    def drop(self, lane: int) -> None:
        self.held.discard(lane)
