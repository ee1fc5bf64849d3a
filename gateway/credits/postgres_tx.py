"""The ledger's transactions on PostgreSQL: each public coroutine is the body of one transaction
(``READ COMMITTED``), the same statements as ``gateway.credits.sqlite_tx`` in psycopg's dialect.

Concurrency is decided by row locks, not by SERIALIZABLE. Every money write touches exactly one user's
balance row, so ``SELECT … FOR UPDATE`` on that row serializes exactly the transactions that can
conflict (one user's holds, posts, voids, purchases, reversals) and nothing else, with no aborts to
retry: a hold waits for the lock, then reads the balance as last committed and decides. SERIALIZABLE
would abort and retry transactions that only look dependent (the unique-key and expiry index pages
they share), and the 50-holds-on-one-balance case is exactly where it would thrash. A hold's state
changes through ``UPDATE … WHERE state = 'pending' RETURNING``, which locks the hold row and
re-checks the state on the newest version, so a post and a void (or the sweeper) racing for one hold
resolve it once. Lock order is always hold row → balance row; the sweeper takes its hold rows with
``FOR UPDATE SKIP LOCKED`` (never waiting on a post in progress) and then the balance rows in sorted
user order, so no two transactions wait on each other in a cycle.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import AsyncConnection

from gateway.credits.accounts import BURN_OUTBOX, BURN_SETTLED, REFUND, STRIPE_CLEARING, user_account
from gateway.credits.ledger import (
    AccountFrozen,
    Balance,
    BurnIntent,
    Entry,
    Hold,
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
)
from gateway.credits.results import (
    BurnAlreadySettled,
    BurnIntentNotFound,
    Outcome,
    RetryTransaction,
    resolved_error,
)

__all__ = [
    "SQL_INSERT_ENTRY",
    "SQL_INSERT_HOLD",
    "SQL_INSERT_INTENT",
    "SQL_LOCK_ACCOUNT",
    "SQL_POST_HOLD",
    "SQL_RESERVE",
    "SQL_SPEND",
    "balance",
    "credit_purchase",
    "get_hold",
    "hold",
    "outbox",
    "outbox_depth",
    "post",
    "reverse_purchase",
    "set_frozen",
    "settle_burn",
    "void",
    "void_expired",
]

Conn = AsyncConnection[Any]
HOLD_COLUMNS = "generation_id, user_id, amount, entry_id, state, created_at, expires_at, resolved_at, reason"

SQL_SELECT_ENTRY = (
    "SELECT id, key, kind, debit_account, credit_account, amount, pending_id, created_at, reference"
    " FROM credit_entries WHERE key = %s"
)
SQL_INSERT_ENTRY = (
    "INSERT INTO credit_entries (key, kind, debit_account, credit_account, amount, pending_id, created_at,"
    " reference) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id"
)
SQL_LOCK_ACCOUNT = (
    "SELECT credits_posted - debits_spent - debits_reversed - debits_pending, frozen, frozen_reason"
    " FROM credit_accounts WHERE user_id = %s FOR UPDATE"
)
SQL_RESERVE = "UPDATE credit_accounts SET debits_pending = debits_pending + %s WHERE user_id = %s"
SQL_INSERT_HOLD = (
    "INSERT INTO credit_holds (generation_id, user_id, amount, entry_id, created_at, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
SQL_POST_HOLD = (
    "UPDATE credit_holds SET state = 'posted', resolved_at = %s WHERE generation_id = %s AND state = 'pending'"
    " AND expires_at > %s RETURNING generation_id, user_id, amount, entry_id, state, created_at, expires_at,"
    " resolved_at, reason"
)
SQL_VOID_HOLD = (
    "UPDATE credit_holds SET state = 'voided', resolved_at = %s, reason = %s WHERE generation_id = %s"
    " AND state = 'pending' RETURNING generation_id, user_id, amount, entry_id, state, created_at, expires_at,"
    " resolved_at, reason"
)
SQL_SPEND = (
    "UPDATE credit_accounts SET debits_pending = debits_pending - %s, debits_spent = debits_spent + %s"
    " WHERE user_id = %s"
)
SQL_RELEASE = "UPDATE credit_accounts SET debits_pending = debits_pending - %s WHERE user_id = %s"
SQL_INSERT_INTENT = (
    "INSERT INTO burn_intents (generation_id, user_id, amount, entry_id, created_at) VALUES (%s, %s, %s, %s, %s)"
)
SQL_CREDIT_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, credits_posted, created_at) VALUES (%s, %s, %s) ON CONFLICT (user_id)"
    " DO UPDATE SET credits_posted = credit_accounts.credits_posted + excluded.credits_posted"
)
SQL_REVERSE_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, debits_reversed, created_at) VALUES (%s, %s, %s) ON CONFLICT (user_id)"
    " DO UPDATE SET debits_reversed = credit_accounts.debits_reversed + excluded.debits_reversed"
)
SQL_FREEZE_ACCOUNT = (
    "INSERT INTO credit_accounts (user_id, frozen, frozen_reason, created_at) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (user_id) DO UPDATE SET frozen = excluded.frozen, frozen_reason = excluded.frozen_reason"
)


def _hold(row: tuple[Any, ...]) -> Hold:
    gen, user, amount, _entry_id, state, created, expires, resolved, reason = row
    return Hold(gen, user, int(amount), state, created, expires, resolved, reason)


def _entry(row: tuple[Any, ...]) -> Entry:
    entry_id, key, kind, debit, credit, amount, _pending, created, reference = row
    return Entry(int(entry_id), key, kind, debit, credit, int(amount), created, json.loads(reference))


async def _one(conn: Conn, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    cur = await conn.execute(sql, params)
    row: tuple[Any, ...] | None = await cur.fetchone()
    return row


async def _insert_entry(conn: Conn, key: str, kind: str, debit: str, credit: str, amount: int,
                        pending_id: int | None, now: float, reference: str) -> int | None:
    row = await _one(conn, SQL_INSERT_ENTRY, (key, kind, debit, credit, amount, pending_id, now, reference))
    return None if row is None else int(row[0])


async def _replayed_entry(conn: Conn, key: str, kind: str, debit: str, credit: str, amount: int) -> Entry:
    row = await _one(conn, SQL_SELECT_ENTRY, (key,))
    assert row is not None  # the conflicting row is committed (the insert waited for it)
    entry = _entry(row)
    if (entry.kind, entry.debit_account, entry.credit_account, entry.amount) != (kind, debit, credit, amount):
        raise IdempotencyConflict(
            f"key {key!r} was used for {entry.kind} of {entry.amount} from {entry.debit_account} to"
            f" {entry.credit_account}, not {kind} of {amount} from {debit} to {credit}"
        )
    return entry


async def credit_purchase(conn: Conn, *, user_id: str, credits: int, key: str, reference: str,
                          now: float) -> Outcome[Entry]:
    account = user_account(user_id)
    entry_id = await _insert_entry(conn, key, "purchase", STRIPE_CLEARING, account, credits, None, now, reference)
    if entry_id is None:
        return Outcome(await _replayed_entry(conn, key, "purchase", STRIPE_CLEARING, account, credits), True)
    await conn.execute(SQL_CREDIT_ACCOUNT, (user_id, credits, now))
    return Outcome(Entry(entry_id, key, "purchase", STRIPE_CLEARING, account, credits, now, json.loads(reference)))


async def reverse_purchase(conn: Conn, *, user_id: str, credits: int, key: str, reference: str,
                           now: float) -> Outcome[Entry]:
    account = user_account(user_id)
    entry_id = await _insert_entry(conn, key, "reversal", account, REFUND, credits, None, now, reference)
    if entry_id is None:
        return Outcome(await _replayed_entry(conn, key, "reversal", account, REFUND, credits), True)
    await conn.execute(SQL_REVERSE_ACCOUNT, (user_id, credits, now))
    return Outcome(Entry(entry_id, key, "reversal", account, REFUND, credits, now, json.loads(reference)))


async def set_frozen(conn: Conn, *, user_id: str, frozen: bool, reason: str, key: str,
                     now: float) -> Outcome[Balance]:
    inserted = await _one(conn, "INSERT INTO credit_freezes (key, user_id, frozen, reason, created_at)"
                                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
                          (key, user_id, int(frozen), reason, now))
    if inserted is None:
        first = await _one(conn, "SELECT user_id, frozen FROM credit_freezes WHERE key = %s", (key,))
        assert first is not None
        if (first[0], bool(first[1])) != (user_id, frozen):
            raise IdempotencyConflict(f"key {key!r} was used to set frozen={bool(first[1])} for another request")
        return Outcome(await balance(conn, user_id), replayed=True)
    await conn.execute(SQL_FREEZE_ACCOUNT, (user_id, int(frozen), reason if frozen else "", now))
    return Outcome(await balance(conn, user_id))


async def balance(conn: Conn, user_id: str) -> Balance:
    row = await _one(conn, "SELECT credits_posted, debits_spent, debits_reversed, debits_pending, frozen,"
                           " frozen_reason FROM credit_accounts WHERE user_id = %s", (user_id,))
    if row is None:
        return Balance(user_id, 0, 0, 0, 0, False)
    credits, spent, reversed_, pending, frozen, reason = row
    credited = int(credits) - int(reversed_)
    return Balance(user_id, credited, int(spent), int(pending), credited - int(spent) - int(pending),
                   bool(frozen), reason)


async def hold(conn: Conn, *, user_id: str, generation_id: str, amount: int, timeout_s: float,
               now: float) -> Outcome[Hold]:
    account = await _one(conn, SQL_LOCK_ACCOUNT, (user_id,))  # the row lock: one user's holds queue here
    entry_id = await _insert_entry(conn, "hold:" + generation_id, "hold", user_account(user_id), BURN_OUTBOX,
                                   amount, None, now, "{}")
    if entry_id is None:
        row = await _one(conn, f"SELECT {HOLD_COLUMNS} FROM credit_holds WHERE generation_id = %s",  # noqa: S608
                         (generation_id,))
        if row is None:  # a hold entry is only ever written together with its hold row
            raise RuntimeError(f"ledger corrupt: hold entry without hold row for {generation_id!r}")
        existing = _hold(row)
        if (existing.user_id, existing.amount) != (user_id, amount):
            raise IdempotencyConflict(f"generation {generation_id!r} already holds {existing.amount} for another"
                                      " user or amount")
        return Outcome(existing, replayed=True)
    if account is not None and account[1]:
        why = f" ({account[2]})" if account[2] else ""
        raise AccountFrozen(f"This account is frozen{why}: no new generations until it is resolved.")
    if account is None or int(account[0]) < amount:
        raise InsufficientCredits()
    await conn.execute(SQL_RESERVE, (amount, user_id))
    expires_at = now + timeout_s
    await conn.execute(SQL_INSERT_HOLD, (generation_id, user_id, amount, entry_id, now, expires_at))
    return Outcome(Hold(generation_id, user_id, amount, "pending", now, expires_at))


async def _void_pending(conn: Conn, generation_id: str, reason: str, now: float, *,
                        release: bool = True) -> tuple[Hold, int] | None:
    row = await _one(conn, SQL_VOID_HOLD, (now, reason, generation_id))
    if row is None:
        return None
    voided = _hold(row)
    await conn.execute(SQL_INSERT_ENTRY, ("void:" + generation_id, "void", user_account(voided.user_id),
                                          BURN_OUTBOX, voided.amount, row[3], now, json.dumps({"reason": reason})))
    if release:
        await conn.execute(SQL_RELEASE, (voided.amount, voided.user_id))
    return voided, voided.amount


async def _select_hold(conn: Conn, generation_id: str) -> Hold | None:
    row = await _one(conn, f"SELECT {HOLD_COLUMNS} FROM credit_holds WHERE generation_id = %s",  # noqa: S608
                     (generation_id,))
    return None if row is None else _hold(row)


async def post(conn: Conn, *, generation_id: str, now: float) -> Outcome[Hold]:
    row = await _one(conn, SQL_POST_HOLD, (now, generation_id, now))
    if row is None:
        existing = await _select_hold(conn, generation_id)
        if existing is None:
            raise HoldNotFound(f"no hold for generation {generation_id!r}")
        if existing.state == "posted":
            return Outcome(existing, replayed=True)
        if existing.state == "voided":
            raise resolved_error(existing, "posted")
        if now < existing.expires_at:  # pending and unexpired, yet the UPDATE missed it: a racing change
            raise RetryTransaction(generation_id)
        voided = await _void_pending(conn, generation_id, "expired", now)
        if voided is None:  # resolved by a racing transaction since the SELECT: look again
            raise RetryTransaction(generation_id)
        return Outcome(voided[0], error=resolved_error(voided[0], "posted"))
    posted = _hold(row)
    entry = await _one(conn, SQL_INSERT_ENTRY, ("post:" + generation_id, "post", user_account(posted.user_id),
                                                BURN_OUTBOX, posted.amount, row[3], now, "{}"))
    assert entry is not None  # one post per hold: the state UPDATE above matched a pending hold
    await conn.execute(SQL_SPEND, (posted.amount, posted.amount, posted.user_id))
    await conn.execute(SQL_INSERT_INTENT, (generation_id, posted.user_id, posted.amount, entry[0], now))
    return Outcome(posted)


async def void(conn: Conn, *, generation_id: str, reason: str, now: float) -> Outcome[Hold]:
    voided = await _void_pending(conn, generation_id, reason, now)
    if voided is not None:
        return Outcome(voided[0])
    existing = await _select_hold(conn, generation_id)
    if existing is None:
        raise HoldNotFound(f"no hold for generation {generation_id!r}")
    if existing.state == "voided":
        return Outcome(existing, replayed=True)
    raise resolved_error(existing, "voided")


async def void_expired(conn: Conn, *, now: float, limit: int) -> list[Hold]:
    cur = await conn.execute(
        "SELECT generation_id FROM credit_holds WHERE state = 'pending' AND expires_at <= %s"
        " ORDER BY expires_at, generation_id LIMIT %s FOR UPDATE SKIP LOCKED", (now, limit),
    )
    due = [r[0] for r in await cur.fetchall()]
    voided: list[Hold] = []
    released: dict[str, int] = {}
    for gen in due:
        result = await _void_pending(conn, gen, "expired", now, release=False)
        if result is not None:
            voided.append(result[0])
            released[result[0].user_id] = released.get(result[0].user_id, 0) + result[1]
    for user in sorted(released):  # one lock order for every sweeper: no deadlock between replicas
        await conn.execute(SQL_RELEASE, (released[user], user))
    return voided


async def get_hold(conn: Conn, generation_id: str) -> Hold | None:
    return await _select_hold(conn, generation_id)


async def outbox(conn: Conn, *, after_seq: int, limit: int) -> list[BurnIntent]:
    cur = await conn.execute(
        "SELECT i.seq, i.generation_id, i.user_id, i.amount, i.created_at FROM burn_intents i"
        " WHERE i.seq > %s AND NOT EXISTS (SELECT 1 FROM burn_settlements s WHERE s.generation_id = i.generation_id)"
        " ORDER BY i.seq LIMIT %s", (after_seq, limit),
    )
    return [BurnIntent(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in await cur.fetchall()]


async def outbox_depth(conn: Conn) -> int:
    row = await _one(conn, "SELECT (SELECT COUNT(*) FROM burn_intents) - (SELECT COUNT(*) FROM burn_settlements)",
                     ())
    return int(row[0]) if row else 0


async def settle_burn(conn: Conn, *, key: str, generation_ids: list[str], tx_id: str,
                      now: float) -> Outcome[Entry]:
    reference = {"generations": len(generation_ids), "tx_id": tx_id}
    # Serialize settlements of the same key: a concurrent twin waits here, then sees the first as a replay.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('credits:settle:' || %s))", (key,))
    first = await _one(conn, SQL_SELECT_ENTRY, (key,))
    if first is not None:
        entry = _entry(first)
        if entry.kind != "burn_settle" or entry.reference != reference:
            raise IdempotencyConflict(f"key {key!r} was used for {entry.kind} {entry.reference}")
        return Outcome(entry, replayed=True)
    cur = await conn.execute(
        "SELECT i.generation_id, i.amount, s.entry_id FROM burn_intents i LEFT JOIN burn_settlements s"
        " ON s.generation_id = i.generation_id WHERE i.generation_id = ANY(%s)", (generation_ids,),
    )
    found = await cur.fetchall()
    missing = sorted(set(generation_ids) - {r[0] for r in found})
    if missing:
        raise BurnIntentNotFound(f"no burn intent for generation(s) {', '.join(missing[:5])}")
    settled = [r[0] for r in found if r[2] is not None]
    if settled:
        raise BurnAlreadySettled(f"generation(s) {', '.join(settled[:5])} were settled by another burn")
    amount = sum(int(r[1]) for r in found)
    entry_id = await _insert_entry(conn, key, "burn_settle", BURN_OUTBOX, BURN_SETTLED, amount, None, now,
                                   json.dumps(reference, sort_keys=True, separators=(",", ":")))
    assert entry_id is not None  # the advisory lock and the check above
    try:
        async with conn.cursor() as many:
            await many.executemany(
                "INSERT INTO burn_settlements (generation_id, entry_id, tx_id, created_at) VALUES (%s, %s, %s, %s)",
                [(gen, entry_id, tx_id, now) for gen in generation_ids],
            )
    except psycopg.errors.UniqueViolation:
        # Another key's settlement of the same intent committed after our check (the advisory lock is per
        # key): this whole transaction rolls back, as the check above would have refused it.
        raise BurnAlreadySettled("a generation in this burn was settled by a concurrent burn") from None
    return Outcome(Entry(entry_id, key, "burn_settle", BURN_OUTBOX, BURN_SETTLED, amount, now, reference))

