"""SQL of the generations domain: the generations and their delivered images.

A generation's row is written before its payment is authorized (the unique (owner, idempotency_key)
constraint decides between two racing requests), and the images are recorded before the payment is
captured, so that after a crash the recovery can finish exactly what was started.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from gateway.lib.db import Migration

__all__ = ["MIGRATIONS", "GenerationRow", "ImageRow", "Repository"]

MIGRATIONS = [
    Migration("generations:0001-generations-images", """
        CREATE TABLE generations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            user_id TEXT NOT NULL DEFAULT '',
            idempotency_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            prompt TEXT NOT NULL,
            params TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
            error_code TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            payment_kind TEXT NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            UNIQUE (owner, idempotency_key)
        );
        CREATE INDEX generations_owner_created ON generations (owner, created_us, id);
        CREATE INDEX generations_unfinished ON generations (status) WHERE status IN ('queued', 'running');
        CREATE TABLE generation_images (
            generation_id TEXT NOT NULL REFERENCES generations (id),
            idx INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            model TEXT NOT NULL,
            PRIMARY KEY (generation_id, idx)
        );
        CREATE INDEX generation_images_sha ON generation_images (sha256)
    """),
    # The replica running a generation (``Database.replica_id``): recovery takes over only the
    # generations of replicas that are gone, so two replicas never finish the same one.
    Migration("generations:0002-lease-owner",
              "ALTER TABLE generations ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''"),
]


@dataclass(frozen=True)
class ImageRow:
    index: int
    sha256: str
    width: int
    height: int
    seed: int
    model: str


@dataclass(frozen=True)
class GenerationRow:
    id: str
    owner: str
    user_id: str
    idempotency_key: str
    request_hash: str
    prompt: str
    params: dict[str, Any]
    status: str
    error_code: str
    error: str
    payment_kind: str
    created_us: int
    updated_us: int
    images: list[ImageRow] = field(default_factory=list)


def _generation(row: sqlite3.Row, images: list[ImageRow]) -> GenerationRow:
    return GenerationRow(row["id"], row["owner"], row["user_id"], row["idempotency_key"], row["request_hash"],
                         row["prompt"], json.loads(row["params"]), row["status"], row["error_code"], row["error"],
                         row["payment_kind"], row["created_us"], row["updated_us"], images)


def _images(conn: sqlite3.Connection, generation_id: str) -> list[ImageRow]:
    rows = conn.execute("SELECT * FROM generation_images WHERE generation_id = ? ORDER BY idx",
                        (generation_id,)).fetchall()
    return [ImageRow(r["idx"], r["sha256"], r["width"], r["height"], r["seed"], r["model"]) for r in rows]


class Repository:
    """Functions of a connection, for ``Database.write`` / ``read``."""

    @staticmethod
    def insert(conn: sqlite3.Connection, g: GenerationRow, *, lease_owner: str = "") -> GenerationRow:
        """Insert (run by the replica ``lease_owner``), or return the existing generation with the same
        (owner, idempotency_key)."""
        cur = conn.execute(
            "INSERT INTO generations (id, owner, user_id, idempotency_key, request_hash, prompt, params, status,"
            " payment_kind, created_us, updated_us, lease_owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (owner, idempotency_key) DO NOTHING",
            (g.id, g.owner, g.user_id, g.idempotency_key, g.request_hash, g.prompt, json.dumps(g.params), g.status,
             g.payment_kind, g.created_us, g.updated_us, lease_owner),
        )
        if cur.rowcount:
            return g
        existing = Repository.by_key(conn, g.owner, g.idempotency_key)
        assert existing is not None
        return existing

    @staticmethod
    def by_key(conn: sqlite3.Connection, owner: str, key: str) -> GenerationRow | None:
        row = conn.execute("SELECT * FROM generations WHERE owner = ? AND idempotency_key = ?",
                           (owner, key)).fetchone()
        return None if row is None else _generation(row, _images(conn, row["id"]))

    @staticmethod
    def get(conn: sqlite3.Connection, generation_id: str) -> GenerationRow | None:
        row = conn.execute("SELECT * FROM generations WHERE id = ?", (generation_id,)).fetchone()
        return None if row is None else _generation(row, _images(conn, generation_id))

    @staticmethod
    def delete_unstarted(conn: sqlite3.Connection, generation_id: str) -> None:
        """Forget a generation whose payment was refused (no money moved; a retry may succeed later)."""
        conn.execute("DELETE FROM generation_images WHERE generation_id = ?", (generation_id,))
        conn.execute("DELETE FROM generations WHERE id = ? AND status = 'queued'", (generation_id,))

    @staticmethod
    def set_status(conn: sqlite3.Connection, generation_id: str, status: str, now_us: int, *,
                   error_code: str = "", error: str = "") -> None:
        conn.execute("UPDATE generations SET status = ?, error_code = ?, error = ?, updated_us = ? WHERE id = ?",
                     (status, error_code, error[:500], now_us, generation_id))

    @staticmethod
    def record_images(conn: sqlite3.Connection, generation_id: str, images: list[ImageRow], now_us: int) -> None:
        conn.executemany(
            "INSERT INTO generation_images (generation_id, idx, sha256, width, height, seed, model)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (generation_id, idx) DO NOTHING",
            [(generation_id, i.index, i.sha256, i.width, i.height, i.seed, i.model) for i in images],
        )
        conn.execute("UPDATE generations SET updated_us = ? WHERE id = ?", (now_us, generation_id))

    @staticmethod
    def page(conn: sqlite3.Connection, owner: str, *, before: tuple[int, str] | None, limit: int
             ) -> list[GenerationRow]:
        if before is None:
            rows = conn.execute("SELECT * FROM generations WHERE owner = ? ORDER BY created_us DESC, id DESC"
                                " LIMIT ?", (owner, limit)).fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM generations WHERE owner = ? AND (created_us < ? OR (created_us = ? AND id < ?))"
                " ORDER BY created_us DESC, id DESC LIMIT ?", (owner, before[0], before[0], before[1], limit),
            ).fetchall()
        return [_generation(r, _images(conn, r["id"])) for r in rows]

    @staticmethod
    def unfinished(conn: sqlite3.Connection) -> list[GenerationRow]:
        rows = conn.execute("SELECT * FROM generations WHERE status IN ('queued', 'running')").fetchall()
        return [_generation(r, _images(conn, r["id"])) for r in rows]

    @staticmethod
    def unfinished_leases(conn: sqlite3.Connection) -> dict[str, str]:
        """generation id → the replica that runs it, of every unfinished generation."""
        rows = conn.execute("SELECT id, lease_owner FROM generations WHERE status IN ('queued', 'running')")
        return {r["id"]: r["lease_owner"] for r in rows}

    @staticmethod
    def take_over(conn: sqlite3.Connection, generation_id: str, *, dead_owner: str, new_owner: str) -> bool:
        """Move an unfinished generation from a dead replica to ``new_owner``; False when another replica
        took it first (the lease changed) or it finished."""
        cur = conn.execute("UPDATE generations SET lease_owner = ? WHERE id = ? AND lease_owner = ?"
                           " AND status IN ('queued', 'running')", (new_owner, generation_id, dead_owner))
        return cur.rowcount > 0

    @staticmethod
    def owns_image(conn: sqlite3.Connection, owner: str, sha256: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM generation_images i JOIN generations g ON g.id = i.generation_id"
            " WHERE i.sha256 = ? AND g.owner = ? AND g.status = 'succeeded' LIMIT 1", (sha256, owner),
        ).fetchone()
        return row is not None
