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

**Rotation.** When ``audit.jsonl`` would pass ``max_file_bytes``, it is synced and renamed
``audit-<first seq, 12 digits>.jsonl`` (between batches), and a new ``audit.jsonl`` continues the same
chain: its first line's ``seq`` and ``prev`` follow the last line of the rotated file, so the files in
name order are one chain (:func:`verify_chain`). Beyond ``keep_files`` rotated files the oldest is
deleted (growth stays bounded, about ``(keep_files + 1) * max_file_bytes``); the remaining files still
verify, from the first one's ``prev`` on. Ship rotated files off the machine to keep the whole history.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["GENESIS_HASH", "AuditLog", "VerifyResult", "audit_files", "line_hash", "verify_chain", "verify_file"]

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
    first_bad_line: int | None = None  # a sequence number
    problem: str = ""
    head: str = GENESIS_HASH
    first_seq: int = 1  # where the verified chain starts (> 1 when older files were rotated away)
    file: str = ""  # the file holding the first bad line


ROTATED_PREFIX = "audit-"


def audit_files(current: Path) -> list[Path]:
    """The rotated files next to ``current`` in chain order, then ``current`` (when it exists)."""
    rotated = sorted(p for p in current.parent.glob(f"{ROTATED_PREFIX}*.jsonl")
                     if p.name[len(ROTATED_PREFIX):-len(".jsonl")].isdigit())
    return rotated + ([current] if current.exists() else [])


def _first_line(path: Path) -> dict[str, Any] | None:
    with path.open("rb") as log:
        raw = log.readline()
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


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


def _chain_start(path: Path) -> tuple[int, str]:
    """(first seq, prev) the chain in ``path`` may start from: genesis, unless ``path`` is a rotated file
    (``audit-<N>.jsonl``) whose first line is seq N — its predecessors were rotated away. Cutting lines off
    the front of any other file is caught as a wrong seq or prev."""
    first = _first_line(path) if path.stat().st_size else None
    digits = path.name[len(ROTATED_PREFIX):-len(".jsonl")] if path.name.startswith(ROTATED_PREFIX) else ""
    if first is None or not digits.isdigit() or first.get("seq") != int(digits) or int(digits) <= 1:
        return 1, GENESIS_HASH
    return int(digits), str(first.get("prev"))


def verify_file(path: Path, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk one file's chain (see :func:`verify_chain`)."""
    return verify_chain([path], anchor)


def verify_chain(paths: list[Path], anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the chain through ``paths`` in order; the first line that does not verify ends the walk.

    The chain starts at genesis when the first file's first line is ``seq`` 1, else (older files rotated
    away) at that line's ``seq`` and ``prev``. ``anchor`` is a (seq, hash) recorded elsewhere (the state
    database): the chain must contain that line.
    """
    start, prev = _chain_start(paths[0]) if paths else (1, GENESIS_HASH)
    seq, lines = start - 1, 0
    for path in paths:
        for raw in _lines(path):
            seq += 1
            if not raw.endswith(b"\n"):
                return VerifyResult(False, lines, seq, "line is not terminated (torn write?)", prev, start, str(path))
            problem, prev_next = _check_line(seq, raw, prev)
            if problem:
                return VerifyResult(False, lines, seq, problem, prev, start, str(path))
            prev, lines = prev_next, lines + 1
            if anchor and seq == anchor[0] and prev != anchor[1]:
                return VerifyResult(False, lines - 1, seq, "hash differs from the one the signer state recorded",
                                    prev, start, str(path))
    if anchor and seq < anchor[0]:
        return VerifyResult(False, lines, seq + 1,
                            f"the log ends at line {seq} but the signer state records line {anchor[0]} (truncated)",
                            prev, start)
    return VerifyResult(True, lines, head=prev, first_seq=start)


class AuditLog:
    """The writer. Lines are prepared (hash chained in memory), then written together by :meth:`flush`."""

    def __init__(self, path: Path, *, fsync: bool = True, anchor: tuple[int, str] | None = None,
                 max_file_bytes: int = 0, keep_files: int = 0) -> None:
        self.path = path
        self._fsync = fsync
        self.max_file_bytes = max_file_bytes  # 0: never rotate
        self.keep_files = keep_files  # 0: keep every rotated file
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._head = self._resume()
        self._size = path.stat().st_size if path.exists() else 0
        self._file_first_seq = self._seq + 1
        if self._size:
            first = _first_line(path)
            self._file_first_seq = int(first["seq"]) if first else 1
        if anchor and anchor[0] > self._seq:
            raise AuditError(f"{path} ends at line {self._seq} but the signer state records line {anchor[0]}: "
                             "the log was truncated or replaced (or lost its tail in a power cut). Investigate; "
                             "`python -m signer audit acknowledge-gap` records the gap and lets the signer start")
        self._pending: list[bytes] = []
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer-audit-sync")

    def _resume(self) -> tuple[int, str]:
        """Continue the chain after the last line (of the newest rotated file when the current one is empty:
        a crash right after a rotation); refuse a log whose tail does not verify."""
        files = [p for p in audit_files(self.path) if p.stat().st_size]
        if not files:
            return 0, GENESIS_HASH
        with files[-1].open("rb") as log:
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
        """Write every queued line with one ``write`` (no fsync); True when anything was written. Rotates
        first when the batch would take the file past ``max_file_bytes``."""
        if not self._pending:
            return False
        data = b"".join(self._pending)
        if self.max_file_bytes and self._size and self._size + len(data) > self.max_file_bytes:
            self._rotate()
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log: {exc.strerror}") from None
        if written != len(data):
            raise AuditError("short write to the audit log")
        self._size += written
        self._pending.clear()
        return True

    def _rotate(self) -> None:
        """Close the current file (synced) under its first sequence number; start a new one."""
        rotated = self.path.with_name(f"{ROTATED_PREFIX}{self._file_first_seq:012d}.jsonl")
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            os.rename(self.path, rotated)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise AuditError(f"cannot rotate the audit log: {exc.strerror}") from None
        self._size, self._file_first_seq = 0, self._seq - len(self._pending) + 1
        old = audit_files(self.path)[:-1]
        for stale in old[:max(0, len(old) - self.keep_files)] if self.keep_files else []:
            with contextlib.suppress(OSError):
                stale.unlink()

    def status(self) -> dict[str, Any]:
        """For /health: the chain's length, the current file's size, and the rotated files kept."""
        return {"seq": self._seq, "file_bytes": self._size, "max_file_bytes": self.max_file_bytes,
                "rotated_files": len(audit_files(self.path)) - 1}

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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
