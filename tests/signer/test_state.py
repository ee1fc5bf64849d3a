"""The state database: an old one gains the new columns; the per-day totals count tokens and lovelace."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from signer.errors import Refusal
from signer.resign import check_resign
from signer.state import DayTotal, SignedTx, StateStore

# The schema of the release before the lovelace budget and the re-sign rule.
OLD_SCHEMA = """
CREATE TABLE signed_tx (tx_id TEXT PRIMARY KEY, kind TEXT NOT NULL, tokens INTEGER NOT NULL, day TEXT NOT NULL,
    root TEXT NOT NULL, audit_id TEXT NOT NULL, signed_at REAL NOT NULL) STRICT, WITHOUT ROWID;
CREATE TABLE generation (generation_id TEXT PRIMARY KEY, tx_id TEXT NOT NULL REFERENCES signed_tx(tx_id))
    STRICT, WITHOUT ROWID;
CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL) STRICT;
CREATE TABLE day_total (day TEXT PRIMARY KEY, tokens INTEGER NOT NULL) STRICT, WITHOUT ROWID;
INSERT INTO signed_tx VALUES ('old', 'burn', 3, '2026-12-02', 'ab', 'cd', 0.0);
INSERT INTO generation VALUES ('g-1', 'old');
INSERT INTO day_total VALUES ('2026-12-02', 3);
"""


def test_an_old_database_is_migrated_and_its_ids_are_never_re_signed(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    state = StateStore(path, fsync=False)
    try:
        assert state.read_day_total("2026-12-02") == DayTotal(3, 0)
        [old] = state.earlier_txs(["g-1"])
        assert (old.tx_id, old.ttl, old.inputs) == ("old", -1, ())
        with pytest.raises(Refusal) as refused:
            check_resign([old], [(bytes(32), 0)], 10**9, ["g-1"])
        assert refused.value.reason == "GENERATION_ID_REUSED"
        with state.transaction():
            state.record(SignedTx("new", "burn", 2, "2026-12-02", "ef", "01", 200_000, 500, ("00" * 32 + "#0",)),
                         ["g-2"], 1.0)
        assert state.read_day_total("2026-12-02") == DayTotal(5, 200_000)
        assert state.signed_tx("new") == SignedTx("new", "burn", 2, "2026-12-02", "ef", "01", 200_000, 500,
                                                  ("00" * 32 + "#0",))
    finally:
        state.close()
