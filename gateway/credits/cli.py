"""``python -m gateway reconcile [--json]``: check the ledger's invariants; exit 1 on any breach.

Runs the ledger's own checks (``gateway.credits.reconcile``) in one read snapshot, then every check
other domains registered with ``register_check`` (e.g. burns against the chain). Nothing is written:
the database is opened without migrating and read through query-only connections. Exit codes:
0 all invariants hold, 1 a breach (the report says which), 2 the ledger could not be read at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from typing import Any

from psycopg import Error as PsycopgError
from psycopg_pool import PoolTimeout

from gateway.cli import COMMANDS
from gateway.credits.domain import is_postgres_url
from gateway.credits.ledger import Ledger, ReconcileReport
from gateway.credits.reconcile import EXTRA_CHECKS
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from gateway.settings import GatewaySettings

__all__ = ["render_text", "run_reconcile"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


async def run_reconcile(settings: GatewaySettings, ledger: Ledger) -> dict[str, Any]:
    """The ledger's report merged with every registered check's; ``checks`` names each part."""
    report: ReconcileReport = await ledger.reconcile()
    checks: dict[str, Any] = {"ledger": {"ok": report.ok, "breaches": report.breaches}}
    breaches = list(report.breaches)
    totals = dict(report.totals)
    for name, check in EXTRA_CHECKS.items():
        try:
            result = await check(settings, ledger)
            found, extra = list(result.breaches), dict(result.totals)
        except Exception as exc:  # a check that cannot run is a breach, never a silent pass
            found, extra = [f"check failed to run: {type(exc).__name__}: {exc}"], {}
        checks[name] = {"ok": not found, "breaches": found}
        breaches.extend(f"[{name}] {b}" for b in found)
        totals.update({f"{name}.{k}": v for k, v in extra.items()})
    return {"ok": not breaches, "breaches": breaches, "totals": totals, "checks": checks}


def render_text(result: dict[str, Any], where: str) -> str:
    lines = [f"reconcile {'OK' if result['ok'] else 'FAILED'}: {where}"]
    for name, check in result["checks"].items():
        state = "ok" if check["ok"] else f"{len(check['breaches'])} breach(es)"
        lines.append(f"  check {name}: {state}")
    if result["totals"]:
        width = max(len(k) for k in result["totals"])
        lines.append("totals:")
        lines.extend(f"  {k.ljust(width)}  {v:>12,}" for k, v in sorted(result["totals"].items()))
    if result["breaches"]:
        lines.append("breaches:")
        lines.extend(f"  - {b}" for b in result["breaches"])
    return "\n".join(lines)


async def _open_and_reconcile(settings: GatewaySettings) -> tuple[dict[str, Any], str]:
    path = settings.sqlite_path
    db = Database(path)
    try:
        tables = db.read_sync(lambda conn: {r[0] for r in conn.execute("SELECT name FROM sqlite_master")})
        if "credit_entries" not in tables:
            raise LookupError(f"{path} has no ledger tables (the gateway has not run here yet)")
        return await run_reconcile(settings, SqliteLedger(db)), str(path)
    finally:
        db.close()


async def _open_postgres_and_reconcile(settings: GatewaySettings) -> tuple[dict[str, Any], str]:
    from gateway.credits.postgres_store import PostgresLedger

    ledger = await PostgresLedger.open(settings.database_url, run_migrations=False, max_size=2)
    try:
        async with (await ledger.pool()).connection() as conn:
            cur = await conn.execute("SELECT to_regclass('credit_entries') IS NOT NULL")
            row = await cur.fetchone()
        if not row or not row[0]:
            raise LookupError("the database has no ledger tables (the gateway has not run on it yet)")
        where = settings.database_url.split("@")[-1]  # never print the credentials part of the URL
        return await run_reconcile(settings, ledger), f"postgresql://…@{where}"
    finally:
        await ledger.close()


def _run(settings: GatewaySettings, args: argparse.Namespace) -> int:
    if is_postgres_url(settings.database_url):
        try:
            result, where = asyncio.run(_open_postgres_and_reconcile(settings))
        except (LookupError, OSError, PsycopgError, PoolTimeout) as exc:
            print(f"reconcile: cannot read the ledger: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result, sort_keys=True) if args.json else render_text(result, where))
        return 0 if result["ok"] else 1
    if not settings.sqlite_path.exists():
        print(f"reconcile: no database at {settings.sqlite_path}", file=sys.stderr)
        return 2
    try:
        result, where = asyncio.run(_open_and_reconcile(settings))
    except (LookupError, sqlite3.Error) as exc:
        print(f"reconcile: cannot read the ledger: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True) if args.json else render_text(result, where))
    return 0 if result["ok"] else 1


COMMANDS["reconcile"] = ("check the credits ledger's invariants (exit 1 on a breach)", _add_arguments, _run)
