"""The ledger's tables (SQLite), TigerBeetle-shaped: immutable entries, a per-user balance row kept in
the same transaction as each entry, and a hold table whose state moves once.

``credit_entries``, ``burn_intents``, ``burn_settlements`` and ``credit_freezes`` are append-only:
triggers abort any UPDATE or DELETE, so a correction can only be a new, reversing entry.
``credit_holds`` may change exactly once, from ``pending`` to ``posted`` or ``voided``; its identity
columns never change. ``credit_accounts`` holds the running balances (a cache of the entries that
``reconcile`` recomputes and compares); its rows are never deleted. The reference for every column
and rule is ``gateway/credits/README.md``.
"""

from __future__ import annotations

from gateway.lib.db import Migration

__all__ = ["APPEND_ONLY_TABLES", "MIGRATIONS"]

APPEND_ONLY_TABLES = ("credit_entries", "burn_intents", "burn_settlements", "credit_freezes")


_TABLES = """
CREATE TABLE credit_accounts (
    user_id TEXT PRIMARY KEY,
    credits_posted INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_spent INTEGER NOT NULL DEFAULT 0 CHECK (debits_spent >= 0),
    debits_reversed INTEGER NOT NULL DEFAULT 0 CHECK (debits_reversed >= 0),
    debits_pending INTEGER NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
    frozen_reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE credit_entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('purchase', 'reversal', 'hold', 'post', 'void', 'burn_settle')),
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    pending_id INTEGER REFERENCES credit_entries (id),
    created_at REAL NOT NULL,
    reference TEXT NOT NULL DEFAULT '{}',
    CHECK (debit_account <> credit_account),
    CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL))
);
CREATE UNIQUE INDEX credit_entries_resolve_once ON credit_entries (pending_id) WHERE pending_id IS NOT NULL;
CREATE TABLE credit_holds (
    generation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    entry_id INTEGER NOT NULL REFERENCES credit_entries (id),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'posted', 'voided')),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    resolved_at REAL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credit_holds_pending_expiry ON credit_holds (expires_at) WHERE state = 'pending';
CREATE TABLE burn_intents (
    seq INTEGER PRIMARY KEY,
    generation_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    entry_id INTEGER NOT NULL REFERENCES credit_entries (id),
    created_at REAL NOT NULL
);
CREATE TABLE burn_settlements (
    generation_id TEXT PRIMARY KEY REFERENCES burn_intents (generation_id),
    entry_id INTEGER NOT NULL REFERENCES credit_entries (id),
    tx_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE credit_freezes (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    frozen INTEGER NOT NULL CHECK (frozen IN (0, 1)),
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

_GUARDS = """
CREATE TRIGGER credit_entries_no_update BEFORE UPDATE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'credit_entries is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER credit_entries_no_delete BEFORE DELETE ON credit_entries
BEGIN SELECT RAISE(ABORT, 'credit_entries is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER burn_intents_no_update BEFORE UPDATE ON burn_intents
BEGIN SELECT RAISE(ABORT, 'burn_intents is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER burn_intents_no_delete BEFORE DELETE ON burn_intents
BEGIN SELECT RAISE(ABORT, 'burn_intents is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER burn_settlements_no_update BEFORE UPDATE ON burn_settlements
BEGIN SELECT RAISE(ABORT, 'burn_settlements is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER burn_settlements_no_delete BEFORE DELETE ON burn_settlements
BEGIN SELECT RAISE(ABORT, 'burn_settlements is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER credit_freezes_no_update BEFORE UPDATE ON credit_freezes
BEGIN SELECT RAISE(ABORT, 'credit_freezes is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER credit_freezes_no_delete BEFORE DELETE ON credit_freezes
BEGIN SELECT RAISE(ABORT, 'credit_freezes is append-only: correct it with a reversing entry'); END;
CREATE TRIGGER credit_accounts_no_delete BEFORE DELETE ON credit_accounts
BEGIN SELECT RAISE(ABORT, 'credit_accounts rows are never deleted'); END;
CREATE TRIGGER credit_holds_no_delete BEFORE DELETE ON credit_holds
BEGIN SELECT RAISE(ABORT, 'credit_holds rows are never deleted'); END;
CREATE TRIGGER credit_holds_resolve_once BEFORE UPDATE ON credit_holds
WHEN OLD.state <> 'pending' OR NEW.state = 'pending'
  OR NEW.generation_id IS NOT OLD.generation_id OR NEW.user_id IS NOT OLD.user_id
  OR NEW.amount IS NOT OLD.amount OR NEW.entry_id IS NOT OLD.entry_id
  OR NEW.created_at IS NOT OLD.created_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a hold resolves exactly once, from pending to posted or voided'); END;
"""

MIGRATIONS: list[Migration] = [
    Migration("credits:0001-ledger", _TABLES),
    Migration("credits:0002-append-only-guards", _GUARDS),
]
