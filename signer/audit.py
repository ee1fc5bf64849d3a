"""Append-only, hash-chained audit log of every request and decision (JSON lines).

Each line is a JSON object with ``seq`` (1, 2, …), ``prev`` (the previous line's hash; 64 zeros for
the first), ``ts``, the request summary, the decision and its reason, and ``hash``::

    hash = sha256(prev_hex_ascii || canonical_json(line without "hash"))

where canonical JSON sorts keys, uses ``(",", ":")`` separators and ASCII escapes, and each line must be
exactly the canonical JSON of its content (hash included), so even a whitespace edit is caught.
Editing, removing, inserting or reordering any line breaks the chain at that line; ``verify`` reports
the first bad line. Cutting lines off the *end* leaves a shorter valid chain: to catch that, the
signer's state database records the head (seq, hash) in the same transaction as each batch, and
``verify`` given that anchor requires the file to reach it.
The signer writes a batch of lines with one ``write`` before it commits the state; the log's ``fsync``
runs alongside the state database's commit, and the reply waits for both, so a reply is never sent
for a decision the log does not durably hold.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from signer.errors import AuditError

__all__ = ["GENESIS_HASH", "AuditLog", "VerifyResult", "line_hash", "verify_file"]

GENESIS_HASH = "0" * 64
MAX_LINE_BYTES = 64 * 1024


def _has_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is not str and kind is not int and kind is not bool and isinstance(item, float):
            return True
    return False


def _canonical(entry: dict[str, Any]) -> bytes:
    """``json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``, as bytes."""
    return _encode(entry, _has_float(entry))


def _encode(entry: dict[str, Any], has_float: bool) -> bytes:
    """:func:`_canonical` when whether ``entry`` holds a float is known.

    orjson writes the same bytes as json ten times faster whenever its output is printable ASCII (it
    leaves non-ASCII and DEL unescaped, where json escapes them) and nothing is a float (the two spell
    some floats differently; no line holds one): tests/signer/test_audit.py checks every ASCII character.
    """
    if not has_float:
        try:
            fast = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits, a key that is not a string
            fast = b"\x7f"
        if fast.isascii() and b"\x7f" not in fast:
            return fast
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def line_hash(prev: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode("ascii") + _canonical(entry)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    lines: int
    first_bad_line: int | None = None
    problem: str = ""
    head: str = GENESIS_HASH


def _check_line(number: int, raw: bytes, prev: str) -> tuple[str | None, str]:
    """(problem or None, this line's hash)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return "not valid JSON", prev
    if not isinstance(entry, dict) or "hash" not in entry:
        return "no hash field", prev
    if _canonical(entry) + b"\n" != raw:
        return "line is not in canonical form (edited?)", prev
    claimed = entry.pop("hash")
    if entry.get("seq") != number:
        return f"sequence number {entry.get('seq')!r}, expected {number}", prev
    if entry.get("prev") != prev:
        return "prev does not match the previous line's hash", prev
    if line_hash(prev, entry) != claimed:
        return "hash does not match the line's content", prev
    return None, claimed


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as log:
        yield from log


def verify_file(path: Path, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the whole chain; the first line that does not verify ends the walk.

    ``anchor`` is a (seq, hash) recorded elsewhere (the state database): the file must contain that line.
    """
    prev, count = GENESIS_HASH, 0
    for count, raw in enumerate(_lines(path), start=1):
        if not raw.endswith(b"\n"):
            return VerifyResult(False, count - 1, count, "line is not terminated (torn write?)", prev)
        problem, prev_next = _check_line(count, raw, prev)
        if problem:
            return VerifyResult(False, count - 1, count, problem, prev)
        prev = prev_next
        if anchor and count == anchor[0] and prev != anchor[1]:
            return VerifyResult(False, count - 1, count, "hash differs from the one the signer state recorded", prev)
    if anchor and count < anchor[0]:
        return VerifyResult(False, count, count + 1,
                            f"the log ends at line {count} but the signer state records line {anchor[0]} (truncated)",
                            prev)
    return VerifyResult(True, count, head=prev)


class AuditLog:
    """The writer. Lines are prepared (hash chained in memory), then written together by :meth:`flush`."""

    def __init__(self, path: Path, *, fsync: bool = True, anchor: tuple[int, str] | None = None) -> None:
        self.path = path
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._head = self._resume()
        if anchor and anchor[0] > self._seq:
            raise AuditError(f"{path} ends at line {self._seq} but the signer state records line {anchor[0]}: "
                             "the log was truncated or replaced (or lost its tail in a power cut). Investigate; "
                             "`python -m signer audit acknowledge-gap` records the gap and lets the signer start")
        self._pending: list[bytes] = []
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-audit-sync")

    def _resume(self) -> tuple[int, str]:
        """Continue the chain after the last line; refuse a log whose tail does not verify."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0, GENESIS_HASH
        with self.path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 2 * MAX_LINE_BYTES))
            tail = log.read().splitlines(keepends=True)
        last = tail[-1]
        try:
            entry = json.loads(last)
            claimed = entry.pop("hash")
            seq, prev = int(entry["seq"]), str(entry["prev"])
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"the last line of {self.path} is damaged; run `python -m signer audit verify`") from None
        canonical = _canonical({**entry, "hash": claimed}) + b"\n"
        if canonical != last or line_hash(prev, entry) != claimed:
            raise AuditError(f"the last line of {self.path} does not verify; run `python -m signer audit verify`")
        return seq, claimed

    @property
    def head(self) -> str:
        return self._head

    def append(self, entry: dict[str, Any]) -> str:
        """Chain ``entry`` (seq, prev and hash are added) and queue it; return its hash (the audit id)."""
        seq = self._seq + 1
        entry = {**entry, "seq": seq, "prev": self._head}
        floats = _has_float(entry)
        digest = hashlib.sha256(self._head.encode("ascii") + _encode(entry, floats)).hexdigest()
        line = _encode({**entry, "hash": digest}, floats) + b"\n"
        if len(line) > MAX_LINE_BYTES:
            raise AuditError("audit line too long")
        self._pending.append(line)
        self._seq, self._head = seq, digest
        return digest

    def checkpoint(self) -> tuple[int, str, int]:
        return self._seq, self._head, len(self._pending)

    def rollback(self, mark: tuple[int, str, int]) -> None:
        """Forget lines queued after ``mark`` (their request was undone before anything was written)."""
        self._seq, self._head = mark[0], mark[1]
        del self._pending[mark[2]:]

    def write(self) -> bool:
        """Write every queued line with one ``write`` (no fsync); True when anything was written."""
        if not self._pending:
            return False
        data = b"".join(self._pending)
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log: {exc.strerror}") from None
        if written != len(data):
            raise AuditError("short write to the audit log")
        self._pending.clear()
        return True

    def sync(self) -> None:
        """fsync the log (when durability is on); AuditError when the disk refuses."""
        if not self._fsync:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise AuditError(f"cannot fsync the audit log: {exc.strerror}") from None

    def sync_in_background(self) -> Future[None] | None:
        """Start :meth:`sync` on the log's own thread, to overlap it with the state database's fsync
        (None when durability is off: there is nothing to wait for)."""
        return self._syncer.submit(self.sync) if self._fsync else None

    def flush(self) -> None:
        """:meth:`write` then :meth:`sync`."""
        if self.write():
            self.sync()

    def close(self) -> None:
        self._syncer.shutdown(wait=True)
        os.close(self._fd)
