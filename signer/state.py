"""Persistent policy state in SQLite: generation ids ever signed, signed transactions, tokens per UTC day.

WAL journal, ``synchronous=FULL`` (``NORMAL`` when fsync is turned off: still safe against kill -9,
not against power loss), every write inside ``BEGIN IMMEDIATE``. Checkpoints run on a background thread
once a second rather than inside a commit (autocheckpoint would put a checkpoint's fsyncs on the
signing path every few hundred requests). ``signer.core`` records a decision
before the witness leaves the process, so a crash after the commit but before the reply leaves those
generation ids consumed; an identical retry (same transaction id) is answered idempotently.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signer.errors import StateError

__all__ = ["DayTotal", "SignedTx", "StateStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signed_tx (
    tx_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('burn', 'mint')),
    tokens INTEGER NOT NULL CHECK (tokens >= 0),
    day TEXT NOT NULL,
    root TEXT NOT NULL,
    audit_id TEXT NOT NULL,
    signed_at REAL NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS generation (
    generation_id TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL REFERENCES signed_tx(tx_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS day_total (
    day TEXT PRIMARY KEY,
    tokens INTEGER NOT NULL CHECK (tokens >= 0),
    lovelace INTEGER NOT NULL DEFAULT 0 CHECK (lovelace >= 0)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS generation_resign (
    generation_id TEXT NOT NULL,
    tx_id TEXT NOT NULL REFERENCES signed_tx(tx_id),
    PRIMARY KEY (generation_id, tx_id)
) STRICT, WITHOUT ROWID;
"""
# Columns added after the first release: ALTER TABLE adds them to older databases (rows signed before
# have no recorded inputs or ttl, so their ids can never be re-signed; lovelace counts from the upgrade).
_ADDED_COLUMNS = (
    ("day_total", "lovelace", "INTEGER NOT NULL DEFAULT 0"),
    ("signed_tx", "lovelace", "INTEGER NOT NULL DEFAULT 0"),
    ("signed_tx", "ttl", "INTEGER NOT NULL DEFAULT -1"),
    ("signed_tx", "inputs", "TEXT NOT NULL DEFAULT ''"),
)
# Tables keyed by text are WITHOUT ROWID (one B-tree each instead of a table plus an index: fewer pages
# written per commit). Databases created before keep their rowid tables; the statements are the same.
_SQL_PARAM_CHUNK = 500
_CACHED_DAYS = 8
CHECKPOINT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class SignedTx:
    tx_id: str
    kind: str
    tokens: int
    day: str
    root: str
    audit_id: str
    lovelace: int = 0
    ttl: int = -1  # -1: not recorded (signed before the re-sign rule existed)
    inputs: tuple[str, ...] = ()  # "txid_hex#index"


@dataclass(frozen=True)
class DayTotal:
    tokens: int = 0
    lovelace: int = 0

    def __add__(self, other: DayTotal) -> DayTotal:
        return DayTotal(self.tokens + other.tokens, self.lovelace + other.lovelace)


def _migrate(db: sqlite3.Connection) -> None:
    for table, column, decl in _ADDED_COLUMNS:
        names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


class StateStore:
    """One connection, used by one thread at a time (the core's worker); a lock guards misuse."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.execute("PRAGMA journal_size_limit=67108864")
            self._db.executescript(_SCHEMA)
            _migrate(self._db)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {path}: {exc}") from None
        self._lock = threading.Lock()
        # Committed per-day totals this process has read or written (it is the only writer: DATA_DIR is
        # locked), and the open transaction's additions; tokens_on() needs no query after the first.
        self._days: dict[str, DayTotal] = {}
        self._pending_days: dict[str, DayTotal] = {}
        self._reader = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
        self._reader_lock = threading.Lock()
        self.path = path
        self.fsync = fsync
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="signer-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while not self._closing.wait(CHECKPOINT_INTERVAL_S):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database, completely, so that the next transaction starts the
        WAL over from its beginning: it stays bounded, and commits overwrite a file of the same size,
        which syncs faster than a growing one. (A PASSIVE checkpoint alone never finishes while commits
        keep coming, and the WAL then grows without end.) Most pages are copied while the writer goes on;
        the few it appended meanwhile are copied with the writer held off for that moment."""
        with self._reader_lock, contextlib.suppress(sqlite3.Error):
            self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with self._lock:
                self._reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        self._closing.set()
        self._checkpointer.join(timeout=10)
        self.checkpoint()
        with self._lock:
            self._db.close()
        with self._reader_lock:
            self._reader.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any exception."""
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """Start a write transaction; it ends with :meth:`commit` or :meth:`rollback`, possibly on another
        thread (the core decides on the event loop and commits on its worker while the disk syncs)."""
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise StateError(f"cannot start a state transaction: {exc}") from None

    def commit(self) -> None:
        pending, self._pending_days = self._pending_days, {}
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StateError(f"cannot commit state: {exc}") from None
        finally:
            self._lock.release()
        if len(self._days) > _CACHED_DAYS:
            self._days.clear()  # only today matters; a restart of the cache costs one query
        for day, added in pending.items():
            # Only a day whose committed total is cached can be updated in place: after the clear above (or
            # for a day never read) the batch's additions are not the day's total, which is then read from
            # the database on its next use. (Caching them as the total forgot earlier commits.)
            if day in self._days:
                self._days[day] = self._days[day] + added

    def rollback(self) -> None:
        self._pending_days = {}
        try:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        finally:
            self._lock.release()

    def signed_tx(self, tx_id: str) -> SignedTx | None:
        row = self._db.execute("SELECT tx_id, kind, tokens, day, root, audit_id, lovelace, ttl, inputs "
                               "FROM signed_tx WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else _signed_tx(row)

    def earlier_txs(self, generation_ids: Sequence[str]) -> list[SignedTx]:
        """Every transaction signed before that named any of ``generation_ids`` (first signings and
        re-signings)."""
        tx_ids: dict[str, None] = {}
        for start in range(0, len(generation_ids), _SQL_PARAM_CHUNK):
            chunk = list(generation_ids[start:start + _SQL_PARAM_CHUNK])
            marks = ",".join("?" * len(chunk))
            for (tx_id,) in self._db.execute(
                    f"SELECT tx_id FROM generation WHERE generation_id IN ({marks}) UNION "  # noqa: S608
                    f"SELECT tx_id FROM generation_resign WHERE generation_id IN ({marks})", chunk + chunk):
                tx_ids[tx_id] = None
        found = [self.signed_tx(tx_id) for tx_id in tx_ids]
        return [tx for tx in found if tx is not None]

    def used_generation_ids(self, generation_ids: Sequence[str]) -> list[str]:
        used: list[str] = []
        for start in range(0, len(generation_ids), _SQL_PARAM_CHUNK):
            chunk = list(generation_ids[start:start + _SQL_PARAM_CHUNK])
            marks = ",".join("?" * len(chunk))
            used += [r[0] for r in self._db.execute(
                f"SELECT generation_id FROM generation WHERE generation_id IN ({marks})", chunk)]  # noqa: S608
        return used

    def tokens_on(self, day: str) -> int:
        """Tokens recorded against ``day``, including the open transaction's."""
        return self.day_total(day).tokens

    def day_total(self, day: str) -> DayTotal:
        """Tokens and lovelace recorded against ``day``, including the open transaction's."""
        committed = self._days.get(day)
        if committed is None:
            row = self._db.execute("SELECT tokens, lovelace FROM day_total WHERE day = ?", (day,)).fetchone()
            committed = DayTotal() if row is None else DayTotal(int(row[0]), int(row[1]))
            self._days[day] = committed
        return committed + self._pending_days.get(day, DayTotal())

    def record(self, tx: SignedTx, generation_ids: Sequence[str], signed_at: float, *,
               resigned: Sequence[str] = ()) -> None:
        """Record a signed transaction, its generation ids (``resigned``: those signed before, now signed
        again under the re-sign rule) and its tokens and lovelace against ``tx.day``."""
        try:
            self._insert(tx, generation_ids, signed_at, set(resigned))
        except sqlite3.Error as exc:
            raise StateError(f"cannot record signed transaction: {exc}") from None

    def _insert(self, tx: SignedTx, generation_ids: Sequence[str], signed_at: float, resigned: set[str]) -> None:
        self._db.execute("INSERT INTO signed_tx (tx_id, kind, tokens, day, root, audit_id, signed_at, lovelace, "
                         "ttl, inputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (tx.tx_id, tx.kind, tx.tokens, tx.day, tx.root, tx.audit_id, signed_at, tx.lovelace,
                          tx.ttl, ",".join(tx.inputs)))
        self._db.executemany("INSERT INTO generation VALUES (?, ?)",
                             [(g, tx.tx_id) for g in generation_ids if g not in resigned])
        if resigned:
            self._db.executemany("INSERT INTO generation_resign VALUES (?, ?)", [(g, tx.tx_id) for g in resigned])
        added = DayTotal(tx.tokens if tx.kind == "burn" else 0, tx.lovelace)
        if added.tokens or added.lovelace:
            self._db.execute(
                "INSERT INTO day_total (day, tokens, lovelace) VALUES (?, ?, ?) ON CONFLICT(day) DO UPDATE SET "
                "tokens = tokens + excluded.tokens, lovelace = lovelace + excluded.lovelace",
                (tx.day, added.tokens, added.lovelace))
            self._pending_days[tx.day] = self._pending_days.get(tx.day, DayTotal()) + added

    def set_audit_head(self, seq: int, digest: str) -> None:
        """Anchor the audit log's head in the same transaction as the decisions it records."""
        try:
            self._db.execute("INSERT INTO audit_head VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                             "seq = excluded.seq, hash = excluded.hash", (seq, digest))
        except sqlite3.Error as exc:
            raise StateError(f"cannot record the audit head: {exc}") from None

    def audit_head(self) -> tuple[int, str] | None:
        with self._reader_lock:
            row = self._reader.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def read_tokens_on(self, day: str) -> int:
        """The committed token total of ``day``, on a separate connection (WAL readers never wait)."""
        return self.read_day_total(day).tokens

    def read_day_total(self, day: str) -> DayTotal:
        """The committed totals of ``day``, on the reader connection."""
        with self._reader_lock:
            row = self._reader.execute("SELECT tokens, lovelace FROM day_total WHERE day = ?", (day,)).fetchone()
        return DayTotal() if row is None else DayTotal(int(row[0]), int(row[1]))


def _signed_tx(row: tuple[Any, ...]) -> SignedTx:
    tx_id, kind, tokens, day, root, audit_id, lovelace, ttl, inputs = row
    return SignedTx(tx_id, kind, int(tokens), day, root, audit_id, int(lovelace), int(ttl),
                    tuple(inputs.split(",")) if inputs else ())
