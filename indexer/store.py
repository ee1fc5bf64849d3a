"""The indexer's SQLite store: chain cursor and points, every tx id with its block, details of the txs
that matter, watched outputs, and txs submitted through the indexer. Rollback-aware: rows are keyed by
block height, a rollback moves the txs above the point into ``rolled_back`` and forgets their blocks.

Writes go through one connection owned by the chain follower (batches of blocks in one transaction);
reads use a second connection (WAL lets them run beside a write).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from indexer.chain import BlockRecord, Point, Tip
from indexer.errors import StoreError

__all__ = ["Batch", "Rollback", "Store", "TxLocation"]

_T = TypeVar("_T")
SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- tx_ids: the block's transaction ids, 32 bytes each, concatenated (what a rollback must undo)
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, slot INTEGER NOT NULL, id BLOB NOT NULL, tx_ids BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_slot ON blocks (slot);
CREATE TABLE IF NOT EXISTS txs (tx_id BLOB PRIMARY KEY, height INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rolled_back (
    tx_id BLOB PRIMARY KEY, height INTEGER NOT NULL, slot INTEGER NOT NULL, block_id BLOB NOT NULL,
    at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tx_details (tx_id BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watched_outputs (
    tx_id BLOB NOT NULL, idx INTEGER NOT NULL, created_height INTEGER NOT NULL, spent_height INTEGER,
    PRIMARY KEY (tx_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS submitted (tx_id BLOB PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
"""
SUBMITTED_KEEP_S = 7 * 24 * 3600
CHECKPOINT_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class Rollback:
    point: Point


Batch = Sequence[BlockRecord | Rollback]


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where a tx is (or was, when ``rolled_back``)."""

    height: int
    slot: int
    block_id: str
    rolled_back: bool


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-32000")
    return conn


class Store:
    """Open with :meth:`open`; the writer methods must be called from one thread at a time."""

    def __init__(self, path: Path, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self.path = path
        self._w = writer
        self._r = reader
        self.rolled_back_count = writer.execute("SELECT count(*) FROM rolled_back").fetchone()[0]
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer-store")
        # WAL checkpoints (and their fsyncs) run on their own connection and thread, beside the writer
        writer.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = _connect(path)
        self._checkpoint_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="indexer-checkpoint")
        self._checkpoint_pending: Future[None] | None = None
        self._checkpoint_at = 0.0

    @classmethod
    def open(cls, path: Path) -> Store:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = _connect(path)
            writer.executescript(_SCHEMA)
            version = writer.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                writer.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif version[0] != SCHEMA_VERSION:
                raise StoreError(f"{path}: schema version {version[0]}, this indexer needs {SCHEMA_VERSION}")
            reader = _connect(path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the indexer store {path}: {exc}") from None
        return cls(path, writer, reader)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._checkpoint_executor.shutdown(wait=True)
        self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._checkpointer.close()
        self._r.close()
        self._w.close()

    async def write(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run a writer method on the store's own thread (every write goes through here, in order)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._r.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._w.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- reads ------------------------------------------------------------------------------------

    def tip(self) -> Tip | None:
        row = self._r.execute("SELECT slot, id, height FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return Tip(row[0], row[1].hex(), row[2]) if row else None

    def intersection_points(self, keep_points: int, dense: int = 16) -> list[Point]:
        """The newest ``dense`` points, then exponentially sparser ones back to ``keep_points`` blocks."""
        tip = self.tip()
        if tip is None:
            return []
        heights, step, height = [], 1, tip.height
        while height >= 0 and tip.height - height <= keep_points:
            heights.append(height)
            if len(heights) >= dense:
                step *= 2
            height -= step
        marks = ",".join("?" * len(heights))
        rows = self._r.execute(f"SELECT slot, id FROM blocks WHERE height IN ({marks}) ORDER BY height DESC",  # noqa: S608
                               heights).fetchall()
        return [Point(slot, block_id.hex()) for slot, block_id in rows]

    def locate(self, tx_ids: Iterable[str]) -> dict[str, TxLocation]:
        """Where each of these txs is: confirmed (``rolled_back`` False) or last seen before a rollback."""
        found: dict[str, TxLocation] = {}
        for tx_hex in tx_ids:
            key = bytes.fromhex(tx_hex)
            row = self._r.execute("SELECT t.height, b.slot, b.id FROM txs t JOIN blocks b ON b.height = t.height"
                                  " WHERE t.tx_id = ?", (key,)).fetchone()
            if row:
                found[tx_hex] = TxLocation(row[0], row[1], row[2].hex(), False)
                continue
            if self.rolled_back_count:
                row = self._r.execute("SELECT height, slot, block_id FROM rolled_back WHERE tx_id = ?",
                                      (key,)).fetchone()
                if row:
                    found[tx_hex] = TxLocation(row[0], row[1], row[2].hex(), True)
        return found

    def tx_detail(self, tx_id: str) -> bytes | None:
        row = self._r.execute("SELECT body FROM tx_details WHERE tx_id = ?", (bytes.fromhex(tx_id),)).fetchone()
        return row[0] if row else None

    def is_submitted(self, tx_id: str) -> bool:
        row = self._r.execute("SELECT 1 FROM submitted WHERE tx_id = ?", (bytes.fromhex(tx_id),)).fetchone()
        return row is not None

    def load_unspent_watched(self) -> set[tuple[str, int]]:
        rows = self._w.execute("SELECT tx_id, idx FROM watched_outputs WHERE spent_height IS NULL")
        return {(tx_id.hex(), idx) for tx_id, idx in rows}

    def load_submitted(self) -> set[str]:
        return {row[0].hex() for row in self._w.execute("SELECT tx_id FROM submitted")}

    # --- writes -----------------------------------------------------------------------------------

    def record_submitted(self, tx_id: str) -> None:
        self._w.execute("INSERT OR REPLACE INTO submitted VALUES (?, ?)", (bytes.fromhex(tx_id), time.time()))

    def apply(self, batch: Batch, prune_below_height: int | None = None) -> None:
        """Apply blocks and rollbacks, in order, in one transaction."""
        w = self._w
        try:
            w.execute("BEGIN IMMEDIATE")
            run: list[BlockRecord] = []
            for item in batch:
                if isinstance(item, Rollback):
                    self._insert(run)
                    run = []
                    self._rollback(item.point)
                else:
                    run.append(item)
            self._insert(run)
            if prune_below_height is not None:
                w.execute("DELETE FROM watched_outputs WHERE spent_height < ?", (prune_below_height,))
                w.execute("DELETE FROM submitted WHERE at < ?", (time.time() - SUBMITTED_KEEP_S,))
                w.execute("DELETE FROM rolled_back WHERE at < ?", (time.time() - SUBMITTED_KEEP_S,))
            w.execute("COMMIT")
            self._maybe_checkpoint()
            if prune_below_height is not None:
                self.rolled_back_count = w.execute("SELECT count(*) FROM rolled_back").fetchone()[0]
        except BaseException:
            if w.in_transaction:
                w.execute("ROLLBACK")
            self.rolled_back_count = w.execute("SELECT count(*) FROM rolled_back").fetchone()[0]
            raise

    def _maybe_checkpoint(self) -> None:
        pending = self._checkpoint_pending
        if (pending is None or pending.done()) and time.monotonic() - self._checkpoint_at >= CHECKPOINT_EVERY_S:
            self._checkpoint_at = time.monotonic()
            self._checkpoint_pending = self._checkpoint_executor.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _insert(self, blocks: list[BlockRecord]) -> None:
        """Insert consecutive blocks with one statement per table (executemany over the whole run)."""
        if not blocks:
            return
        w = self._w
        fromhex = bytes.fromhex
        w.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?)",
                      [(b.height, b.slot, fromhex(b.id), fromhex("".join(b.tx_ids))) for b in blocks])
        txs = [(fromhex(t), b.height) for b in blocks for t in b.tx_ids]
        w.executemany("INSERT OR REPLACE INTO txs VALUES (?, ?)", txs)
        if self.rolled_back_count:
            cursor = w.executemany("DELETE FROM rolled_back WHERE tx_id = ?", [(t,) for t, _ in txs])
            self.rolled_back_count -= max(0, cursor.rowcount)
        details = [(fromhex(t), doc) for b in blocks for t, doc in b.details]
        if details:
            w.executemany("INSERT OR REPLACE INTO tx_details VALUES (?, ?)", details)
        created = [(fromhex(t), i, b.height) for b in blocks for t, i in b.created]
        if created:
            w.executemany("INSERT OR REPLACE INTO watched_outputs VALUES (?, ?, ?, NULL)", created)
        spent = [(b.height, fromhex(t), i) for b in blocks for t, i in b.spent]
        if spent:
            w.executemany("UPDATE watched_outputs SET spent_height = ? WHERE tx_id = ? AND idx = ?", spent)

    def _rollback(self, point: Point) -> None:
        w = self._w
        if point.is_origin:
            keep = -1
        else:
            row = w.execute("SELECT max(height) FROM blocks WHERE slot <= ?", (point.slot,)).fetchone()
            keep = row[0] if row and row[0] is not None else -1
        now, gone = time.time(), list[tuple[bytes, int, int, bytes, float]]()
        for height, slot, block_id, tx_ids in w.execute("SELECT * FROM blocks WHERE height > ?", (keep,)):
            gone.extend((tx_ids[i:i + 32], height, slot, block_id, now) for i in range(0, len(tx_ids), 32))
        w.executemany("INSERT OR REPLACE INTO rolled_back VALUES (?, ?, ?, ?, ?)", gone)
        w.executemany("DELETE FROM txs WHERE tx_id = ?", [(row[0],) for row in gone])
        w.execute("DELETE FROM blocks WHERE height > ?", (keep,))
        w.execute("UPDATE watched_outputs SET spent_height = NULL WHERE spent_height > ?", (keep,))
        w.execute("DELETE FROM watched_outputs WHERE created_height > ?", (keep,))
        self.rolled_back_count = w.execute("SELECT count(*) FROM rolled_back").fetchone()[0]
