"""SQL of the accounts domain: users, refresh-token families, rate-limit counters.

Everything here runs inside ``Database.write``/``read`` (one transaction per call, off the loop).
Refresh tokens are stored as SHA-256 digests: a leaked database does not hand out sessions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.lib.db import Migration

__all__ = [
    "MIGRATIONS",
    "RefreshOutcome",
    "StoredSession",
    "User",
    "count_hit",
    "family_of_token",
    "find_user_by_email",
    "find_user_by_id",
    "insert_user",
    "new_family",
    "purge_rate_windows",
    "revoke_family",
    "rotate_refresh",
]

MIGRATIONS = [
    Migration("accounts:0001-users-sessions-rate-limits", """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE refresh_families (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('user', 'wallet')),
            subject TEXT NOT NULL,
            email TEXT NOT NULL DEFAULT '',
            linked_user_id TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            revoked_at REAL,
            revoked_reason TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            family_id TEXT NOT NULL REFERENCES refresh_families (id),
            issued_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
        CREATE TABLE rate_limit_windows (
            bucket TEXT NOT NULL,
            window_start INTEGER NOT NULL,
            hits INTEGER NOT NULL,
            PRIMARY KEY (bucket, window_start)
        );
        CREATE INDEX rate_limit_windows_start ON rate_limit_windows (window_start)
    """),
]


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    created_at: float


@dataclass(frozen=True)
class StoredSession:
    """Who a refresh family belongs to (what a rotated access token is issued for)."""

    family_id: str
    kind: str
    subject: str
    email: str
    linked_user_id: str


@dataclass(frozen=True)
class RefreshOutcome:
    """``session`` on success; else ``failure`` is 'unknown', 'expired', 'revoked' or 'reused'."""

    session: StoredSession | None
    failure: str = ""


def _user(row: sqlite3.Row | None) -> User | None:
    return None if row is None else User(row["id"], row["email"], row["password_hash"], row["created_at"])


def insert_user(conn: sqlite3.Connection, user: User) -> bool:
    """False when the email is taken (the unique constraint decides, not a prior read; ``ON CONFLICT``
    rather than catching the violation, which would abort the transaction on PostgreSQL)."""
    cur = conn.execute("INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT DO NOTHING", (user.id, user.email, user.password_hash, user.created_at))
    return cur.rowcount > 0


def find_user_by_email(conn: sqlite3.Connection, email: str) -> User | None:
    return _user(conn.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone())


def find_user_by_id(conn: sqlite3.Connection, user_id: str) -> User | None:
    return _user(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def new_family(conn: sqlite3.Connection, session: StoredSession, *, token_hash: str, now: float,
               expires_at: float) -> None:
    conn.execute(
        "INSERT INTO refresh_families (id, kind, subject, email, linked_user_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (session.family_id, session.kind, session.subject, session.email, session.linked_user_id, now),
    )
    conn.execute("INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                 (token_hash, session.family_id, now, expires_at))


def rotate_refresh(conn: sqlite3.Connection, *, token_hash: str, next_hash: str, now: float,
                   expires_at: float) -> RefreshOutcome:
    """Spend ``token_hash`` and issue ``next_hash`` in its family; a second use revokes the family.

    The reuse is committed (the caller must not raise inside this transaction): whoever holds the
    stolen copy and whoever holds the rotated one are both logged out.
    """
    row = conn.execute(
        "SELECT t.family_id, t.expires_at, t.used_at, f.kind, f.subject, f.email, f.linked_user_id, f.revoked_at"
        " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?",
        (token_hash,),
    ).fetchone()
    if row is None:
        return RefreshOutcome(None, "unknown")
    if row["revoked_at"] is not None:
        return RefreshOutcome(None, "revoked")
    if row["used_at"] is not None:
        revoke_family(conn, row["family_id"], now=now, reason="refresh token reused")
        return RefreshOutcome(None, "reused")
    if row["expires_at"] <= now:
        return RefreshOutcome(None, "expired")
    conn.execute("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, token_hash))
    conn.execute("INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                 (next_hash, row["family_id"], now, expires_at))
    session = StoredSession(row["family_id"], row["kind"], row["subject"], row["email"], row["linked_user_id"])
    return RefreshOutcome(session)


def revoke_family(conn: sqlite3.Connection, family_id: str, *, now: float, reason: str) -> bool:
    cur = conn.execute(
        "UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
        (now, reason, family_id),
    )
    return cur.rowcount > 0


def family_of_token(conn: sqlite3.Connection, token_hash: str) -> str | None:
    row = conn.execute("SELECT family_id FROM refresh_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
    return None if row is None else str(row["family_id"])


def count_hit(conn: sqlite3.Connection, bucket: str, window_start: int) -> int:
    """Count one hit in ``bucket``'s current window; returns the hits so far (this one included)."""
    row = conn.execute(
        "INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES (?, ?, 1)"
        " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_windows.hits + 1"
        " RETURNING hits",
        (bucket, window_start),
    ).fetchone()
    return int(row["hits"])


def purge_rate_windows(conn: sqlite3.Connection, before: int) -> int:
    return conn.execute("DELETE FROM rate_limit_windows WHERE window_start < ?", (before,)).rowcount
