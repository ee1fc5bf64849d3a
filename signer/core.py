"""The signer's core: decode, check, record, sign, audit — for a batch of requests at a time.

One batch runs in one SQLite ``BEGIN IMMEDIATE`` transaction; its audit lines are written with one
write just before the commit, fsynced alongside it; only then do witnesses leave. A request writes
state only once, after every check passed, so one refusal never undoes its neighbours. Synchronous and thread-confined:
``signer.batcher`` calls :meth:`SignerCore.process` from a single worker thread.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common import merkle
from signer.audit import AuditLog
from signer.errors import KeyStoreError, MalformedRequest, Refusal
from signer.identity import Identity
from signer.keystore import KeyRole, KeyStore
from signer.policy import check_burn, check_mint
from signer.state import SignedTx, StateStore
from signer.tx import DecodedTx, decode_transaction

__all__ = ["BurnRequest", "Denied", "Failed", "MintRequest", "Outcome", "PendingBatch", "Signed", "SignerCore",
           "utc_day", "witness_set_cbor"]

MAX_ID_CHARS = 128
MAX_NOTE_CHARS = 256
PURPOSE_BURN_BATCH = 1


@dataclass(frozen=True)
class BurnRequest:
    tx_cbor: bytes
    purpose: int
    generation_ids: tuple[str, ...]
    request_id: str = ""
    current_slot: int = 0
    caller: str = ""


@dataclass(frozen=True)
class MintRequest:
    tx_cbor: bytes
    quantity: int
    operator_note: str = ""
    current_slot: int = 0
    caller: str = ""


@dataclass(frozen=True)
class Signed:
    tx_id: str
    witness_set_cbor: bytes
    audit_id: str
    tokens: int = 0
    replay: bool = False


@dataclass(frozen=True)
class Denied:
    """A refusal (``invalid`` False) or a malformed request (``invalid`` True), both audited."""

    reason: str
    detail: str
    audit_id: str
    invalid: bool = False


@dataclass(frozen=True)
class Failed:
    """The signer could not decide (key store, disk); the caller may retry later."""

    detail: str


Outcome = Signed | Denied | Failed


class PendingBatch:
    """Decisions whose state transaction is open and whose audit lines are written but not synced."""

    def __init__(self, core: SignerCore, outcomes: list[Outcome], written: bool) -> None:
        self._core = core
        self._outcomes = outcomes
        self._written = written

    def commit(self, *, overlap: bool = True) -> list[Outcome]:
        """Make the decisions durable; the outcomes may leave only after this returns.

        ``overlap``: the audit log's fsync runs on its own thread alongside the database's commit (the
        shorter wait). Otherwise the log is synced first and the state committed after, on this thread:
        no hand-over (about 200 µs less CPU here, and the same rate with one caller on this disk), and
        a power cut between the two leaves the log ahead of the state, never behind it.
        """
        if not overlap:
            try:
                if self._written:
                    self._core.audit.sync()
            except BaseException:
                self._core.state.rollback()
                raise
            self._core.state.commit()
            return self._outcomes
        synced = self._core.audit.sync_in_background() if self._written else None
        try:
            self._core.state.commit()
        finally:
            if synced is not None:
                synced.result()
        return self._outcomes


def utc_day(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).date().isoformat()


def witness_set_cbor(witnesses: Sequence[tuple[bytes, bytes]]) -> bytes:
    """CBOR ``{0: [[vkey, signature], ...]}`` for 32-byte keys and 64-byte signatures (at most 23), written
    directly: ``cbor2.dumps`` would produce the same bytes at several times the cost."""
    if len(witnesses) > 23 or any(len(v) != 32 or len(s) != 64 for v, s in witnesses):
        raise ValueError("witnesses are up to 23 pairs of a 32-byte key and a 64-byte signature")
    parts = [b"\xa1\x00", bytes([0x80 | len(witnesses)])]
    for vkey, signature in witnesses:
        parts += (b"\x82\x58\x20", vkey, b"\x58\x40", signature)
    return b"".join(parts)


def _check_generation_ids(ids: Sequence[str]) -> None:
    if not ids:
        raise MalformedRequest("a burn batch needs at least one generation id")
    for gid in ids:
        if not (1 <= len(gid) <= MAX_ID_CHARS and gid.isascii() and gid.isprintable() and " " not in gid):
            raise MalformedRequest(f"generation ids are 1..{MAX_ID_CHARS} printable ASCII characters without spaces")
    if len(set(ids)) != len(ids):
        raise MalformedRequest("a generation id appears twice in the request")


@dataclass
class _Audit:
    """The audit entry being built for one request, and the signer clock's reading for it."""

    kind: str
    request: dict[str, Any]
    now: float
    ts: str
    day: str
    extra: dict[str, Any] = field(default_factory=dict)


class SignerCore:
    def __init__(self, identity: Identity, keys: KeyStore, state: StateStore, audit: AuditLog, *,
                 mint_ceremony_enabled: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.identity = identity
        self.policy = identity.policy
        self.keys = keys
        self.state = state
        self.audit = audit
        self.mint_ceremony_enabled = mint_ceremony_enabled
        self._clock = clock
        self._public = {role: keys.public_key(role) for role in keys.roles()}

    def tokens_signed_today(self) -> int:
        return self.state.read_tokens_on(utc_day(self._clock()))

    @property
    def decide_on_loop(self) -> bool:
        """True when deciding is quick CPU work (in-memory keys); a token may block on its device."""
        return self.keys.kind == "file"

    @property
    def durable(self) -> bool:
        """True when committing waits for the disk (fsync on): keep it off the event loop."""
        return self.state.fsync

    def process(self, requests: Sequence[BurnRequest | MintRequest]) -> list[Outcome]:
        """Decide every request and make the decisions durable; StateError/AuditError when that failed."""
        return self.decide(requests).commit()

    def decide(self, requests: Sequence[BurnRequest | MintRequest]) -> PendingBatch:
        """Decide every request inside one open state transaction; the audit lines reach the file (not yet
        fsynced). Nothing may leave until :meth:`PendingBatch.commit` returns."""
        mark = self.audit.checkpoint()
        written = False
        self.state.begin()
        try:
            outcomes = [self._decide(request) for request in requests]
            seq, head, _ = self.audit.checkpoint()
            self.state.set_audit_head(seq, head)
            written = self.audit.write()
        except BaseException:
            self.state.rollback()
            if not written:  # nothing reached the file: forget the queued lines
                self.audit.rollback(mark)
            raise
        return PendingBatch(self, outcomes, written)

    def _decide(self, request: BurnRequest | MintRequest) -> Outcome:
        entry = self._entry(request)
        mark = self.audit.checkpoint()
        try:
            # Every refusal is raised before the one write (state.record), so a refused request leaves the
            # batch's transaction untouched; a failing write is a StateError that aborts the whole batch.
            if isinstance(request, BurnRequest):
                return self._burn(request, entry)
            return self._mint(request, entry)
        except Refusal as refusal:
            self.audit.rollback(mark)
            return Denied(refusal.reason, refusal.detail, self._record(entry, "deny", refusal.reason, refusal.detail))
        except MalformedRequest as exc:
            self.audit.rollback(mark)
            return Denied("INVALID_ARGUMENT", str(exc), self._record(entry, "invalid", "INVALID_ARGUMENT", str(exc)),
                          invalid=True)
        except KeyStoreError as exc:
            self.audit.rollback(mark)
            self._record(entry, "error", "KEY_STORE", str(exc))
            return Failed(str(exc))

    def _entry(self, request: BurnRequest | MintRequest) -> _Audit:
        now = self._clock()
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        summary: dict[str, Any] = {"caller": request.caller[:200], "current_slot": request.current_slot,
                                   "tx_bytes": len(request.tx_cbor)}
        if isinstance(request, BurnRequest):
            summary.update(request_id=request.request_id[:200], purpose=request.purpose,
                           generation_ids=len(request.generation_ids))
            kind = "burn"
        else:
            summary.update(quantity=request.quantity, operator_note=request.operator_note[:MAX_NOTE_CHARS])
            kind = "mint"
        return _Audit(kind, summary, now, when.isoformat(timespec="milliseconds"), when.date().isoformat())

    def _record(self, entry: _Audit, decision: str, reason: str = "", detail: str = "") -> str:
        line: dict[str, Any] = {"ts": entry.ts, "kind": entry.kind, "request": entry.request, "decision": decision,
                                **entry.extra}
        if reason:
            line["reason"], line["detail"] = reason, detail[:500]
        return self.audit.append(line)

    def _decode(self, tx_cbor: bytes, entry: _Audit) -> DecodedTx:
        tx = decode_transaction(tx_cbor)
        entry.request["tx_id"] = tx.tx_id.hex()
        return tx

    def _witness_set(self, tx_id: bytes, roles: Sequence[KeyRole]) -> bytes:
        return witness_set_cbor([(self._public[role], self.keys.sign(role, tx_id)) for role in roles])

    def _burn(self, request: BurnRequest, entry: _Audit) -> Signed:
        if request.purpose != PURPOSE_BURN_BATCH:
            raise Refusal("PURPOSE_UNSUPPORTED", f"purpose {request.purpose} is not supported")
        ids = request.generation_ids
        if len(ids) > self.policy.caps.max_generation_ids:
            raise Refusal("TOO_MANY_GENERATION_IDS",
                          f"{len(ids)} generation ids; at most {self.policy.caps.max_generation_ids} per request")
        _check_generation_ids(ids)
        root = merkle.merkle_root(ids)
        entry.request["root"] = root.hex()
        tx = self._decode(request.tx_cbor, entry)
        plan = check_burn(tx, ids, request.current_slot, self.policy, root)
        tx_id = plan.tx_id.hex()
        entry.extra.update(tokens=plan.tokens, fee_lovelace=plan.fee_lovelace)
        roles: list[KeyRole] = ["payment", "policy"] if plan.sign_with_policy_key else ["payment"]
        used = self.state.used_generation_ids(ids)
        if used:
            # A transaction signed before has spent its ids, so only then can this be a retry of it.
            previous = self.state.signed_tx(tx_id)
            if previous is not None and previous.kind == "burn" and previous.root == plan.root.hex():
                # Same body ⇒ same metadata root ⇒ same ids: an idempotent retry, not counted twice.
                witness = self._witness_set(plan.tx_id, roles)
                entry.extra["replay"] = True
                return Signed(tx_id, witness, self._record(entry, "allow"), plan.tokens, replay=True)
            raise Refusal("GENERATION_ID_REUSED",
                          f"{len(used)} generation id(s) were signed before, e.g. {', '.join(used[:3])}")
        day = entry.day
        signed_today = self.state.tokens_on(day)
        if signed_today + plan.tokens > self.policy.caps.max_tokens_per_day:
            raise Refusal("TOKENS_PER_DAY_OVER_CAP",
                          f"{signed_today} tokens signed on {day} (UTC); {plan.tokens} more exceeds the cap of "
                          f"{self.policy.caps.max_tokens_per_day}")
        witness = self._witness_set(plan.tx_id, roles)
        audit_id = self._record(entry, "allow")
        self.state.record(SignedTx(tx_id, "burn", plan.tokens, day, entry.request["root"], audit_id), ids, entry.now)
        return Signed(tx_id, witness, audit_id, plan.tokens)

    def _mint(self, request: MintRequest, entry: _Audit) -> Signed:
        if not self.mint_ceremony_enabled:
            raise Refusal("MINT_CEREMONY_DISABLED",
                          "the mint ceremony is off; the operator must start the signer with --enable-mint-ceremony")
        if request.quantity <= 0:
            raise MalformedRequest("the ceremony's quantity must be positive")
        tx = self._decode(request.tx_cbor, entry)
        fee = check_mint(tx, request.quantity, request.current_slot, self.policy)
        tx_id = tx.tx_id.hex()
        entry.extra.update(tokens=request.quantity, fee_lovelace=fee)
        witness = self._witness_set(tx.tx_id, ["payment", "policy"])
        if self.state.signed_tx(tx_id) is not None:
            entry.extra["replay"] = True
            return Signed(tx_id, witness, self._record(entry, "allow"), request.quantity, replay=True)
        audit_id = self._record(entry, "allow")
        self.state.record(SignedTx(tx_id, "mint", request.quantity, entry.day, "", audit_id), (), entry.now)
        return Signed(tx_id, witness, audit_id, request.quantity)
