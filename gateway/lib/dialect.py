"""The SQLite → PostgreSQL translation the gateway's portable SQL needs, and nothing more.

Domain SQL is written once, in the common subset of both dialects (``ON CONFLICT … DO NOTHING`` rather
than ``INSERT OR IGNORE``, ``CASE WHEN`` rather than summing booleans, times as numbers the caller
passes). Two differences cannot be written away and are translated here:

- placeholders: sqlite3's ``?`` becomes psycopg's ``%s`` outside quoted literals and identifiers (and
  every ``%`` becomes ``%%``);
- column types in migrations: SQLite's ``INTEGER`` is 64-bit and ``REAL`` is a double, PostgreSQL's are
  32-bit and single precision, which would overflow microsecond timestamps and round unix seconds to
  minutes, so they become ``BIGINT`` and ``DOUBLE PRECISION``; ``BLOB`` becomes ``BYTEA``.

A migration that needs more than this carries its own ``postgres_sql``.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any

__all__ = ["postgres_ddl", "postgres_placeholders", "table_names"]

_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA"}
_TYPE_PATTERN = re.compile(r"\b(INTEGER|REAL|BLOB)\b")


def _outside_quotes(sql: str, replace: dict[str, str]) -> str:
    """``sql`` with each character in ``replace`` substituted, except inside '…' and "…"."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            out.append(char)
            if char == quote:
                quote = ""  # a doubled quote ('') closes and reopens: the result is the same
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        else:
            out.append(replace.get(char, char))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def postgres_placeholders(sql: str) -> str:
    """The statement with ``?`` placeholders as psycopg's ``%s`` (cached: statements are constants).
    Every ``%`` is doubled, inside literals too: psycopg reads the whole text for placeholders."""
    return _outside_quotes(sql.replace("%", "%%"), {"?": "%s"})


def postgres_ddl(sql: str) -> str:
    """A migration's DDL with SQLite's column types as their PostgreSQL equivalents (outside literals)."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    return "".join(part if part.startswith("'") else _TYPE_PATTERN.sub(lambda m: _TYPES[m.group(1)], part)
                   for part in parts)


def table_names(conn: Any) -> set[str]:
    """The tables of the database behind ``conn`` (a sqlite3 connection, or PostgreSQL's adapter: the
    tables of the current schema, the one ``search_path`` names)."""
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        rows = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = current_schema()").fetchall()
    return {str(r[0]) for r in rows}
