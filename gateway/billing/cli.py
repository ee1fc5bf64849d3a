"""Billing's operator commands and its part of ``python -m gateway reconcile``.

- ``python -m gateway billing-unfreeze (--email E | --user-id ID) [--reason TEXT]``: after a lost
  dispute the account stays frozen until the operator decides; this lifts the freeze and marks the
  user's lost disputes as dealt with (so a later dispute won does not freeze them again). Refused
  while a dispute is still open (that one unfreezes by itself when won).
- reconcile check ``billing``: a reversal step written but not applied for an hour means a refund or
  lost dispute whose event Stripe stopped redelivering; totals of what was sold and reversed.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time

from gateway.accounts.repository import find_user_by_email, find_user_by_id
from gateway.accounts.validation import normalise_email
from gateway.billing import repository as repo
from gateway.cli import COMMANDS
from gateway.credits.ledger import Ledger
from gateway.credits.reconcile import CheckResult, register_check
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database, is_postgres_url, open_database
from gateway.lib.errors import GatewayError
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings

__all__ = ["billing_check", "unfreeze"]

STUCK_STEP_S = 3600.0


def _add_unfreeze_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the artist's email")
    who.add_argument("--user-id", help="the artist's user id")
    parser.add_argument("--reason", default="unfrozen by the operator", help="recorded with the change")


async def unfreeze(db: Database, ledger: Ledger, *, user_id: str, reason: str) -> list[str]:
    """Lift a dispute freeze; the lost disputes forgiven. ValueError while a dispute is open."""
    still_open = await db.read(lambda c: repo.open_disputes(c, user_id))
    if still_open:
        raise ValueError(f"dispute {', '.join(still_open)} is still open; the account unfreezes when it is won")
    forgiven = await db.write(lambda c: repo.forgive_lost_disputes(c, user_id))
    await ledger.set_frozen(user_id, False, reason=reason[:200] or "unfrozen by the operator",
                            key=f"operator:unfreeze:{user_id}:{time.time_ns()}")
    return forgiven


def _find_user_id(db: Database, args: argparse.Namespace) -> str | None:
    if args.user_id:
        user = db.read_sync(lambda c: find_user_by_id(c, str(args.user_id)))
    else:
        email = normalise_email(str(args.email))
        user = db.read_sync(lambda c: find_user_by_email(c, email))
    return None if user is None else user.id


async def _unfreeze_on(db: Database, settings: GatewaySettings, *, user_id: str, reason: str) -> list[str]:
    if db.dialect == "sqlite":
        return await unfreeze(db, SqliteLedger(db), user_id=user_id, reason=reason)
    from gateway.credits.postgres_store import PostgresLedger

    ledger = await PostgresLedger.open(settings.database_url, run_migrations=False, max_size=1)
    try:
        return await unfreeze(db, ledger, user_id=user_id, reason=reason)
    finally:
        await ledger.close()


def _run_unfreeze(settings: GatewaySettings, args: argparse.Namespace) -> int:
    if not is_postgres_url(settings.database_url) and not settings.sqlite_path.exists():
        print(f"billing-unfreeze: no database at {settings.sqlite_path}", file=sys.stderr)
        return 2
    db = open_database(settings.database_url, settings.sqlite_path)
    try:
        db.migrate(all_migrations(db.dialect))
        user_id = _find_user_id(db, args)
        if user_id is None:
            print("billing-unfreeze: no such artist", file=sys.stderr)
            return 1
        forgiven = asyncio.run(_unfreeze_on(db, settings, user_id=user_id, reason=str(args.reason)))
    except (ValueError, GatewayError) as exc:
        print(f"billing-unfreeze: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"unfrozen {user_id}" + (f"; lost disputes dealt with: {', '.join(forgiven)}" if forgiven else ""))
    return 0


async def billing_check(settings: GatewaySettings, ledger: Ledger) -> CheckResult:
    """Stuck reversal steps are breaches; totals of purchases, credits sold and reversed, disputes."""
    db = open_database(settings.database_url, settings.sqlite_path)

    def read(c: sqlite3.Connection) -> CheckResult:
        exists = ("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'billing_purchases'"
                  if db.dialect == "sqlite" else "SELECT COUNT(*) FROM (SELECT to_regclass('billing_purchases') AS t) x"
                  " WHERE t IS NOT NULL")
        if not c.execute(exists).fetchone()[0]:
            return CheckResult([], {})
        stuck = c.execute("SELECT charge_id, from_credits, to_credits FROM billing_reversal_steps"
                          " WHERE applied = 0 AND created_at < ?", (time.time() - STUCK_STEP_S,)).fetchall()
        sold = c.execute("SELECT COUNT(*), COALESCE(SUM(credits), 0) FROM billing_purchases WHERE credited = 1"
                         ).fetchone()
        reversed_ = c.execute("SELECT COALESCE(SUM(to_credits - from_credits), 0) FROM billing_reversal_steps"
                              " WHERE applied = 1").fetchone()[0]
        disputes = c.execute("SELECT COALESCE(SUM(CASE WHEN closed = 0 THEN 1 ELSE 0 END), 0),"
                             " COALESCE(SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END), 0)"
                             " FROM billing_disputes").fetchone()
        breaches = [f"reversal step {r['from_credits']}->{r['to_credits']} of charge {r['charge_id']} written"
                    f" over {STUCK_STEP_S:.0f} s ago and not applied (redeliver its Stripe event)" for r in stuck]
        return CheckResult(breaches, {
            "purchases_credited": int(sold[0]), "credits_sold": int(sold[1]), "credits_reversed": int(reversed_),
            "disputes_open": int(disputes[0]), "disputes_lost": int(disputes[1]),
        })

    try:
        return await db.read(read)
    finally:
        db.close()


COMMANDS["billing-unfreeze"] = ("lift the freeze a lost card dispute left on an artist's account",
                                _add_unfreeze_arguments, _run_unfreeze)
register_check("billing", billing_check)
