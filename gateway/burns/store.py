"""The burner's tables and their SQL: batches, the generation ids in each, and the lanes.

- ``burn_batches``: one row per burn tx ever built (a rebuild after expiry is a new row that
  ``supersedes`` the old one). ``state`` moves built → signed → submitted → mempool → confirmed → final;
  ``expired`` marks a row replaced by a rebuild. The tx id and the exact bytes are stored *before*
  submission, so after a crash the burner asks the indexer about a tx it knows byte for byte.
- ``burn_batch_items``: each generation id once (primary key), with its leaf index and the batch that
  currently carries it; a rebuild moves the items to the new row (same order, same root).
- ``burn_lanes``: the K treasury UTxOs; ``utxo_*`` is what the lane's next tx spends (the change output
  of ``batch_id``, possibly not yet on chain); a lane is free once that batch is confirmed.
- ``burn_lane_leases`` / ``burn_burners``: which replica drives each lane, and the burners running
  (``gateway.burns.leases``).

Order is ``created_at`` then ``id`` (portable: no ``rowid`` on PostgreSQL).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.lib.db import Migration

__all__ = ["ACTIVE_STATES", "IN_FLIGHT_STATES", "MIGRATIONS", "ORDER", "Batch", "Lane", "batch_from_row"]

MIGRATIONS = [
    Migration("burns:0001-batches-items-lanes", """
        CREATE TABLE burn_batches (
            id TEXT PRIMARY KEY,
            lane INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('built', 'signed', 'submitted', 'mempool', 'confirmed', 'final',
                                                 'expired')),
            count INTEGER NOT NULL CHECK (count > 0),
            root TEXT NOT NULL,
            generation_ids TEXT NOT NULL,
            tx_id TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            aux BLOB NOT NULL,
            witnesses BLOB,
            fee INTEGER NOT NULL,
            ttl_slot INTEGER NOT NULL,
            inputs TEXT NOT NULL,
            lane_outputs TEXT NOT NULL,
            supersedes TEXT NOT NULL DEFAULT '',
            block_slot INTEGER NOT NULL DEFAULT 0,
            block_height INTEGER NOT NULL DEFAULT 0,
            depth INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            final_at REAL
        );
        CREATE INDEX burn_batches_state ON burn_batches (state);
        CREATE TABLE burn_batch_items (
            generation_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            batch_id TEXT NOT NULL REFERENCES burn_batches (id),
            idx INTEGER NOT NULL,
            user_id TEXT NOT NULL
        );
        CREATE INDEX burn_batch_items_batch ON burn_batch_items (batch_id, idx);
        CREATE TABLE burn_lanes (
            lane INTEGER PRIMARY KEY,
            utxo_tx TEXT NOT NULL,
            utxo_index INTEGER NOT NULL,
            lovelace INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            batch_id TEXT NOT NULL,
            updated_at REAL NOT NULL
        )
    """),
    Migration("burns:0002-lane-leases", """
        CREATE TABLE burn_lane_leases (
            lane INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL,
            taken_at REAL NOT NULL
        );
        CREATE TABLE burn_burners (
            replica TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        );
        CREATE INDEX burn_batches_created ON burn_batches (created_at, id)
    """),
]

IN_FLIGHT_STATES = ("submitted", "mempool", "confirmed")  # followed on chain
ACTIVE_STATES = ("built", "signed", *IN_FLIGHT_STATES)  # not final, not superseded
UNCONFIRMED_STATES = ("built", "signed", "submitted", "mempool")  # a lane with one of these is busy
ORDER = " ORDER BY created_at, id"  # oldest first


@dataclass(frozen=True)
class Batch:
    id: str
    lane: int
    state: str
    count: int
    root: str
    generation_ids: list[str]
    tx_id: str
    body: bytes
    aux: bytes
    witnesses: bytes | None
    fee: int
    ttl_slot: int
    inputs: list[tuple[str, int]]
    lane_outputs: list[tuple[int, int, int, int]]  # (lane, output index, lovelace, tokens)
    supersedes: str
    block_slot: int
    block_height: int
    depth: int
    attempts: int
    next_attempt_at: float
    last_error: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Lane:
    lane: int
    utxo_tx: str
    utxo_index: int
    lovelace: int
    tokens: int
    batch_id: str


BATCH_COLUMNS = ("id, lane, state, count, root, generation_ids, tx_id, body, aux, witnesses, fee, ttl_slot, inputs,"
                 " lane_outputs, supersedes, block_slot, block_height, depth, attempts, next_attempt_at, last_error,"
                 " created_at, updated_at")


def batch_from_row(row: Any) -> Batch:
    r = tuple(row)
    return Batch(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], bytes(r[7]), bytes(r[8]),
                 bytes(r[9]) if r[9] is not None else None, r[10], r[11], [tuple(x) for x in json.loads(r[12])],
                 [tuple(x) for x in json.loads(r[13])], r[14], r[15], r[16], r[17], r[18], r[19], r[20], r[21],
                 r[22])


def select_batches(conn: sqlite3.Connection, where: str, params: tuple[Any, ...] = ()) -> list[Batch]:
    sql = f"SELECT {BATCH_COLUMNS} FROM burn_batches WHERE {where}"  # noqa: S608 (callers pass constant fragments)
    return [batch_from_row(r) for r in conn.execute(sql, params).fetchall()]


def lanes(conn: sqlite3.Connection) -> list[Lane]:
    rows = conn.execute("SELECT lane, utxo_tx, utxo_index, lovelace, tokens, batch_id FROM burn_lanes ORDER BY lane")
    return [Lane(*tuple(r)) for r in rows.fetchall()]


def max_item_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM burn_batch_items").fetchone()[0])


def known_items(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT generation_id FROM burn_batch_items WHERE generation_id IN ({marks})"  # noqa: S608
        found.update(r[0] for r in conn.execute(sql, chunk).fetchall())
    return found


@dataclass(frozen=True)
class NewBatch:
    id: str
    lane: int
    generation_ids: list[str]
    seqs: list[int]
    user_ids: list[str]
    root: str
    tx_id: str
    body: bytes
    aux: bytes
    fee: int
    ttl_slot: int
    inputs: list[tuple[str, int]]
    lane_outputs: list[tuple[int, int, int, int]]
    supersedes: str = ""


def insert_batch(conn: sqlite3.Connection, b: NewBatch, now: float) -> None:
    """The batch row, its items (moved from the superseded row on a rebuild) and its lanes' new UTxOs."""
    conn.execute(
        "INSERT INTO burn_batches (id, lane, state, count, root, generation_ids, tx_id, body, aux, fee, ttl_slot,"
        " inputs, lane_outputs, supersedes, created_at, updated_at) VALUES (?, ?, 'built', ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?, ?)",
        (b.id, b.lane, len(b.generation_ids), b.root, json.dumps(b.generation_ids), b.tx_id, b.body, b.aux, b.fee,
         b.ttl_slot, json.dumps(b.inputs), json.dumps(b.lane_outputs), b.supersedes, now, now))
    if b.supersedes:
        cur = conn.execute("UPDATE burn_batches SET state = 'expired', updated_at = ?"
                           " WHERE id = ? AND state != 'expired'", (now, b.supersedes))
        if cur.rowcount != 1:  # rebuilt already (never twice: two txs from the same inputs, one would fail forever)
            raise ValueError(f"burn batch {b.supersedes} is already superseded")
        conn.execute("UPDATE burn_batch_items SET batch_id = ? WHERE batch_id = ?", (b.id, b.supersedes))
    else:
        conn.executemany(
            "INSERT INTO burn_batch_items (generation_id, seq, batch_id, idx, user_id) VALUES (?, ?, ?, ?, ?)",
            [(g, s, b.id, i, u) for i, (g, s, u) in enumerate(zip(b.generation_ids, b.seqs, b.user_ids,
                                                                  strict=True))])
    for lane, index, lovelace, tokens in b.lane_outputs:
        conn.execute(
            "INSERT INTO burn_lanes (lane, utxo_tx, utxo_index, lovelace, tokens, batch_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lane) DO UPDATE SET utxo_tx = excluded.utxo_tx,"
            " utxo_index = excluded.utxo_index, lovelace = excluded.lovelace, tokens = excluded.tokens,"
            " batch_id = excluded.batch_id, updated_at = excluded.updated_at",
            (lane, b.tx_id, index, lovelace, tokens, b.id, now))


def set_state(conn: sqlite3.Connection, batch_id: str, state: str, now: float, **fields: Any) -> None:
    allowed = {"witnesses", "block_slot", "block_height", "depth", "attempts", "next_attempt_at", "last_error",
               "final_at"}
    extra = {k: v for k, v in fields.items() if k in allowed}
    sets = "".join(f", {k} = ?" for k in extra)
    conn.execute(f"UPDATE burn_batches SET state = ?, updated_at = ?{sets} WHERE id = ?",  # noqa: S608
                 (state, now, *extra.values(), batch_id))


def note_failure(conn: sqlite3.Connection, batch_id: str, error: str, retry_at: float, now: float) -> None:
    conn.execute("UPDATE burn_batches SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                 " updated_at = ? WHERE id = ?", (error[:500], retry_at, now, batch_id))


def replace_built(conn: sqlite3.Connection, batch_id: str, tx_id: str, body: bytes, aux: bytes, fee: int,
                  ttl_slot: int, lane_outputs: list[tuple[int, int, int, int]], now: float) -> None:
    """A batch never signed nor submitted gets fresh bytes (e.g. a new TTL after a long outage)."""
    conn.execute("UPDATE burn_batches SET tx_id = ?, body = ?, aux = ?, fee = ?, ttl_slot = ?, lane_outputs = ?,"
                 " state = 'built', witnesses = NULL, updated_at = ? WHERE id = ? AND state = 'built'",
                 (tx_id, body, aux, fee, ttl_slot, json.dumps(lane_outputs), now, batch_id))
    conn.execute("UPDATE burn_lanes SET utxo_tx = ?, updated_at = ? WHERE batch_id = ?", (tx_id, now, batch_id))


def item(conn: sqlite3.Connection, generation_id: str) -> tuple[str, int, str] | None:
    row = conn.execute("SELECT batch_id, idx, user_id FROM burn_batch_items WHERE generation_id = ?",
                       (generation_id,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]), str(row[2]))


def page(conn: sqlite3.Connection, before: tuple[float, str] | None, limit: int) -> list[Batch]:
    """Batches newest first (``created_at``, then ``id``), ``before`` the position of the previous page's
    last batch (:func:`position_of`)."""
    if before is None:
        rows = conn.execute(f"SELECT {BATCH_COLUMNS} FROM burn_batches ORDER BY created_at DESC, id DESC"  # noqa: S608
                            " LIMIT ?", (limit,)).fetchall()
    else:
        rows = conn.execute(f"SELECT {BATCH_COLUMNS} FROM burn_batches WHERE created_at < ?"  # noqa: S608
                            " OR (created_at = ? AND id < ?) ORDER BY created_at DESC, id DESC LIMIT ?",
                            (before[0], before[0], before[1], limit)).fetchall()
    return [batch_from_row(r) for r in rows]


def position_of(conn: sqlite3.Connection, batch_id: str) -> tuple[float, str] | None:
    row = conn.execute("SELECT created_at, id FROM burn_batches WHERE id = ?", (batch_id,)).fetchone()
    return (float(row[0]), str(row[1])) if row else None


def totals(conn: sqlite3.Connection) -> dict[str, int]:
    """Credits spent (all burn intents), tokens burned (confirmed + final), and what is still pending."""
    spent = int(conn.execute("SELECT COALESCE(SUM(amount), 0) FROM burn_intents").fetchone()[0])
    by_state = {str(s): (int(n), int(c)) for s, n, c in conn.execute(
        "SELECT state, COUNT(*), COALESCE(SUM(count), 0) FROM burn_batches GROUP BY state").fetchall()}
    final = by_state.get("final", (0, 0))[1]
    confirmed = by_state.get("confirmed", (0, 0))[1]
    in_flight = sum(by_state.get(s, (0, 0))[1] for s in UNCONFIRMED_STATES)
    return {"credits_spent": spent, "tokens_burned": final + confirmed, "tokens_final": final,
            "tokens_in_flight": in_flight, "pending": spent - final - confirmed,
            "batches": sum(n for s, (n, _) in by_state.items() if s != "expired")}
