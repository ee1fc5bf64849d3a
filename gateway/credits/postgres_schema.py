"""The ledger's tables on PostgreSQL: the same tables, columns, constraints and ids as
``gateway.credits.schema`` (SQLite), in PostgreSQL's dialect (identity columns, BIGINT amounts,
DOUBLE PRECISION times, PL/pgSQL guard triggers that also refuse TRUNCATE).

Both lists carry the same migration ids, so one place (``gateway/credits``) says what the schema is
and each backend records what it applied in its own ``_migrations`` table.
"""

from __future__ import annotations

from gateway.lib.db import Migration

__all__ = ["POSTGRES_MIGRATIONS"]

_TABLES = """
CREATE TABLE credit_accounts (
    user_id TEXT PRIMARY KEY,
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_spent BIGINT NOT NULL DEFAULT 0 CHECK (debits_spent >= 0),
    debits_reversed BIGINT NOT NULL DEFAULT 0 CHECK (debits_reversed >= 0),
    debits_pending BIGINT NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
    frozen_reason TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE credit_entries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('purchase', 'reversal', 'hold', 'post', 'void', 'burn_settle')),
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    pending_id BIGINT REFERENCES credit_entries (id),
    created_at DOUBLE PRECISION NOT NULL,
    reference TEXT NOT NULL DEFAULT '{}',
    CHECK (debit_account <> credit_account),
    CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL))
);
CREATE UNIQUE INDEX credit_entries_resolve_once ON credit_entries (pending_id) WHERE pending_id IS NOT NULL;
CREATE TABLE credit_holds (
    generation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    entry_id BIGINT NOT NULL REFERENCES credit_entries (id),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'posted', 'voided')),
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credit_holds_pending_expiry ON credit_holds (expires_at) WHERE state = 'pending';
CREATE TABLE burn_intents (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    generation_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    entry_id BIGINT NOT NULL REFERENCES credit_entries (id),
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE burn_settlements (
    generation_id TEXT PRIMARY KEY REFERENCES burn_intents (generation_id),
    entry_id BIGINT NOT NULL REFERENCES credit_entries (id),
    tx_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE credit_freezes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    frozen INTEGER NOT NULL CHECK (frozen IN (0, 1)),
    reason TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
"""

_GUARDS = """
CREATE FUNCTION credit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: correct it with a reversing entry', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE FUNCTION credit_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE FUNCTION credit_hold_resolves_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state <> 'pending' OR NEW.state = 'pending'
       OR NEW.generation_id IS DISTINCT FROM OLD.generation_id OR NEW.user_id IS DISTINCT FROM OLD.user_id
       OR NEW.amount IS DISTINCT FROM OLD.amount OR NEW.entry_id IS DISTINCT FROM OLD.entry_id
       OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        RAISE EXCEPTION 'a hold resolves exactly once, from pending to posted or voided'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_entries_append_only BEFORE UPDATE OR DELETE ON credit_entries
    FOR EACH ROW EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER burn_intents_append_only BEFORE UPDATE OR DELETE ON burn_intents
    FOR EACH ROW EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER burn_settlements_append_only BEFORE UPDATE OR DELETE ON burn_settlements
    FOR EACH ROW EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER credit_freezes_append_only BEFORE UPDATE OR DELETE ON credit_freezes
    FOR EACH ROW EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER credit_entries_no_truncate BEFORE TRUNCATE ON credit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER burn_intents_no_truncate BEFORE TRUNCATE ON burn_intents
    FOR EACH STATEMENT EXECUTE FUNCTION credit_append_only();
CREATE TRIGGER credit_accounts_no_delete BEFORE DELETE ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION credit_never_deleted();
CREATE TRIGGER credit_holds_no_delete BEFORE DELETE ON credit_holds
    FOR EACH ROW EXECUTE FUNCTION credit_never_deleted();
CREATE TRIGGER credit_holds_resolve_once BEFORE UPDATE ON credit_holds
    FOR EACH ROW EXECUTE FUNCTION credit_hold_resolves_once();
"""

POSTGRES_MIGRATIONS: list[Migration] = [
    Migration("credits:0001-ledger", _TABLES),
    Migration("credits:0002-append-only-guards", _GUARDS),
]
