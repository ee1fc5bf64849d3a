"""The web3 domain's tables and SQL: challenges (single use), quotes, redemptions (each tx and quote once).

Every write runs in one ``BEGIN IMMEDIATE`` transaction on the database's writer thread. The unique
constraints are the last word on double redemption: ``web3_redemptions.quote_id`` is the primary key
and ``tx_id`` is UNIQUE, so two concurrent confirms of one payment cannot both succeed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from gateway.lib.db import Database, Migration
from gateway.web3.errors import Redeemed
from gateway.web3.txbuild import payment_ref

__all__ = ["MIGRATIONS", "QuoteRow", "Web3Store"]

MIGRATIONS = [
    Migration("web3:0001-challenges-quotes-redemptions", """
        CREATE TABLE web3_challenges (
            nonce TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            text TEXT NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE INDEX web3_challenges_by_address ON web3_challenges (address, expires_at);
        CREATE TABLE web3_quotes (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            address TEXT NOT NULL,
            prompt TEXT NOT NULL,
            params_json TEXT NOT NULL,
            tx_cbor BLOB NOT NULL,
            tx_id TEXT NOT NULL UNIQUE,
            fee INTEGER NOT NULL,
            signers TEXT NOT NULL,
            ttl_slot INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            created_at REAL NOT NULL,
            state TEXT NOT NULL,
            paid_tx_id TEXT,
            image_urls_json TEXT,
            error TEXT
        );
        CREATE INDEX web3_quotes_by_paid_tx ON web3_quotes (paid_tx_id);
        CREATE INDEX web3_quotes_by_state ON web3_quotes (state);
        CREATE TABLE web3_redemptions (
            quote_id TEXT PRIMARY KEY REFERENCES web3_quotes (id),
            tx_id TEXT NOT NULL UNIQUE,
            depth INTEGER NOT NULL,
            redeemed_at REAL NOT NULL
        )
    """),
    Migration("web3:0002-quote-generation", """
        ALTER TABLE web3_quotes ADD COLUMN generation_id TEXT;
        ALTER TABLE web3_quotes ADD COLUMN events_url TEXT
    """),
    Migration("web3:0003-payment-ref", """
        ALTER TABLE web3_quotes ADD COLUMN payment_ref TEXT;
        CREATE UNIQUE INDEX web3_quotes_by_payment_ref ON web3_quotes (payment_ref)
    """),
]

_QUOTE_COLUMNS = ("id, owner, address, prompt, params_json, tx_cbor, tx_id, fee, signers, ttl_slot, expires_at, "
                  "created_at, state, paid_tx_id, image_urls_json, error, generation_id, events_url, payment_ref")
# Built once from the constant column list above (no input reaches these strings).
_SELECT_QUOTE = f"SELECT {_QUOTE_COLUMNS} FROM web3_quotes"  # noqa: S608
_INSERT_QUOTE = f"INSERT INTO web3_quotes ({_QUOTE_COLUMNS}) VALUES ({', '.join('?' * 19)})"  # noqa: S608


@dataclass(frozen=True)
class QuoteRow:
    id: str
    owner: str
    address: str
    prompt: str
    params: dict[str, Any]
    tx_cbor: bytes
    tx_id: str
    fee: int
    signers: frozenset[bytes]
    ttl_slot: int
    expires_at: float
    created_at: float
    state: str  # open, waiting, paid, delivered, failed, expired
    paid_tx_id: str | None
    image_urls: list[str] | None
    error: str | None
    generation_id: str | None = None  # the generations domain's job (its SSE stream is events_url)
    events_url: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> QuoteRow:
        return cls(
            row["id"], row["owner"], row["address"], row["prompt"], json.loads(row["params_json"]),
            bytes(row["tx_cbor"]), row["tx_id"], row["fee"],
            frozenset(bytes.fromhex(s) for s in row["signers"].split(",") if s), row["ttl_slot"],
            row["expires_at"], row["created_at"], row["state"], row["paid_tx_id"],
            json.loads(row["image_urls_json"]) if row["image_urls_json"] else None, row["error"],
            row["generation_id"], row["events_url"],
        )


class Web3Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- challenges --

    async def add_challenge(self, nonce: str, address: str, text: str, expires_at: float) -> None:
        def add(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM web3_challenges WHERE expires_at < ?", (time.time() - 3600,))
            conn.execute("INSERT INTO web3_challenges (nonce, address, text, expires_at) VALUES (?, ?, ?, ?)",
                         (nonce, address, text, expires_at))

        await self.db.write(add)

    async def open_challenges(self, address: str, now: float, limit: int = 32) -> list[tuple[str, str]]:
        """(nonce, text) of the unused, unexpired challenges of ``address``, newest first."""
        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT nonce, text FROM web3_challenges WHERE address = ? AND used_at IS NULL AND expires_at > ?"
                " ORDER BY expires_at DESC LIMIT ?", (address, now, limit)).fetchall()
            return [(r["nonce"], r["text"]) for r in rows]

        return await self.db.read(read)

    async def open_challenge(self, nonce: str, address: str, now: float) -> str | None:
        """The text of this unused, unexpired challenge of ``address``, or None."""
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT text FROM web3_challenges WHERE nonce = ? AND address = ? AND used_at IS NULL"
                               " AND expires_at > ?", (nonce, address, now)).fetchone()
            return str(row["text"]) if row else None

        return await self.db.read(read)

    async def use_challenge(self, nonce: str, address: str, now: float) -> bool:
        """Mark the challenge used; False when it was used already, expired, or is not this address's."""
        def use(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE web3_challenges SET used_at = ? WHERE nonce = ? AND address = ? AND used_at IS NULL"
                " AND expires_at > ?", (now, nonce, address, now))
            return cursor.rowcount == 1

        return await self.db.write(use)

    # -- quotes --

    async def add_quote(self, quote: QuoteRow) -> None:
        def add(conn: sqlite3.Connection) -> None:
            conn.execute(
                _INSERT_QUOTE,
                (quote.id, quote.owner, quote.address, quote.prompt, json.dumps(quote.params, sort_keys=True),
                 quote.tx_cbor, quote.tx_id, quote.fee, ",".join(sorted(s.hex() for s in quote.signers)),
                 quote.ttl_slot, quote.expires_at, quote.created_at, quote.state, None, None, None, None, None,
                 payment_ref(quote.id)))

        await self.db.write(add)

    async def open_quotes(self, address: str, now: float) -> int:
        """Quotes of ``address`` still open (unpaid, unexpired)."""
        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT COUNT(*) AS n FROM web3_quotes WHERE address = ? AND state = 'open'"
                               " AND expires_at > ?", (address, now)).fetchone()
            return int(row["n"])

        return await self.db.read(count)

    async def quote(self, quote_id: str) -> QuoteRow | None:
        def read(conn: sqlite3.Connection) -> QuoteRow | None:
            row = conn.execute(_SELECT_QUOTE + " WHERE id = ?", (quote_id,)).fetchone()
            return QuoteRow.from_row(row) if row else None

        return await self.db.read(read)

    async def quote_by_tx(self, tx_id: str) -> QuoteRow | None:
        """The quote built with this tx id, or else the one this tx was claimed for."""
        def read(conn: sqlite3.Connection) -> QuoteRow | None:
            row = conn.execute(_SELECT_QUOTE + " WHERE tx_id = ? OR paid_tx_id = ?"
                               " ORDER BY tx_id = ? DESC LIMIT 1", (tx_id, tx_id, tx_id)).fetchone()
            return QuoteRow.from_row(row) if row else None

        return await self.db.read(read)

    async def quote_by_ref(self, ref: str) -> QuoteRow | None:
        """The quote whose payment reference (what a tx carries on chain) is ``ref``."""
        def read(conn: sqlite3.Connection) -> QuoteRow | None:
            row = conn.execute(_SELECT_QUOTE + " WHERE payment_ref = ?", (ref,)).fetchone()
            return QuoteRow.from_row(row) if row else None

        return await self.db.read(read)

    async def claim(self, quote_id: str, tx_id: str) -> QuoteRow:
        """Bind ``tx_id`` as the quote's payment (state waiting). Idempotent for the same tx; another tx is
        refused while the quote is waiting, paid or delivered."""
        def claim(conn: sqlite3.Connection) -> QuoteRow:
            row = QuoteRow.from_row(conn.execute(_SELECT_QUOTE + " WHERE id = ?",
                                                 (quote_id,)).fetchone())
            if row.paid_tx_id == tx_id and row.state in ("waiting", "paid", "delivered"):
                return row
            if row.state in ("paid", "delivered"):
                raise Redeemed("this quote was already redeemed by another transaction")
            if row.state == "waiting" and row.paid_tx_id not in (None, tx_id):
                raise Redeemed("this quote is already waiting for another transaction", code="quote_claimed")
            conn.execute("UPDATE web3_quotes SET state = 'waiting', paid_tx_id = ?, error = NULL WHERE id = ?",
                         (tx_id, quote_id))
            return QuoteRow.from_row(conn.execute(_SELECT_QUOTE + " WHERE id = ?",
                                                  (quote_id,)).fetchone())

        return await self.db.write(claim)

    async def redeem(self, quote_id: str, tx_id: str, depth: int) -> None:
        """Record the redemption once; Redeemed when the tx paid for another quote or the quote already redeemed."""
        def redeem(conn: sqlite3.Connection) -> None:
            existing = conn.execute("SELECT quote_id, tx_id FROM web3_redemptions WHERE quote_id = ? OR tx_id = ?",
                                    (quote_id, tx_id)).fetchall()
            if any(r["quote_id"] == quote_id and r["tx_id"] == tx_id for r in existing):
                return  # a replay of the same redemption
            try:
                conn.execute("INSERT INTO web3_redemptions (quote_id, tx_id, depth, redeemed_at) VALUES (?, ?, ?, ?)",
                             (quote_id, tx_id, depth, time.time()))
            except sqlite3.IntegrityError:
                raise Redeemed("this transaction or this quote was already redeemed") from None
            conn.execute("UPDATE web3_quotes SET state = 'paid' WHERE id = ? AND state = 'waiting'", (quote_id,))

        await self.db.write(redeem)

    async def finish(self, quote_id: str, *, state: str, image_urls: list[str] | None = None,
                     error: str | None = None) -> None:
        def finish(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE web3_quotes SET state = ?, image_urls_json = ?, error = ? WHERE id = ?",
                         (state, json.dumps(image_urls) if image_urls is not None else None, error, quote_id))

        await self.db.write(finish)

    async def set_generation(self, quote_id: str, generation_id: str, events_url: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE web3_quotes SET generation_id = ?, events_url = ? WHERE id = ?",
                         (generation_id, events_url, quote_id))

        await self.db.write(write)

    async def waiting_quotes(self, limit: int = 1000) -> list[QuoteRow]:
        def read(conn: sqlite3.Connection) -> list[QuoteRow]:
            rows = conn.execute(_SELECT_QUOTE + " WHERE state IN ('waiting', 'paid')"
                                " ORDER BY created_at LIMIT ?", (limit,)).fetchall()
            return [QuoteRow.from_row(r) for r in rows]

        return await self.db.read(read)
