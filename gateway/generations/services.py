"""The generations service: create (idempotent), read, list, wait — over the runner and the ledger.

Other payment paths (web3) reuse it: ``await service.create(principal, request, key, payment=...)``
runs a generation paid by any ``Payment``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from common.logging import get_logger
from gateway.accounts.principal import Principal
from gateway.credits.ledger import HoldExpired, HoldNotFound, HoldResolved, Ledger
from gateway.generations.images import ImageUrlSigner
from gateway.generations.payment import CreditHoldPayment, Payment
from gateway.generations.repository import GenerationRow, Repository
from gateway.generations.runner import JobRunner, now_us
from gateway.generations.schemas import GenerationPage, GenerationRequest, GenerationView, ImageView
from gateway.lib.db import Database
from gateway.lib.errors import ClientError, Forbidden, NotFound, Unprocessable
from gateway.settings import GatewaySettings

__all__ = ["GenerationService"]

log = get_logger("gateway.generations")
ACCEPT_WAIT_S = 5.0
PAGE_MAX = 100


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class GenerationNotFound(NotFound):
    code = "generation_not_found"


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_hash(request: GenerationRequest) -> str:
    return hashlib.sha256(msgspec.json.encode(request)).hexdigest()


class GenerationService:
    def __init__(self, settings: GatewaySettings, db: Database, runner: JobRunner, signer: ImageUrlSigner,
                 ledger: Callable[[], Ledger]) -> None:
        self.settings = settings
        self.db = db
        self.runner = runner
        self.signer = signer
        self._ledger = ledger
        # Set by the burns domain (TreasuryGuard.require): raises 503 while no burn can back a new credit spend.
        self.card_backing_check: Callable[[], None] | None = None

    def credit_payment(self, principal: Principal, generation_id: str, images: int) -> CreditHoldPayment:
        if not principal.user_id:
            raise Forbidden("Card credits belong to an email account; this wallet session has none",
                            code="no_card_account")
        if self.card_backing_check is not None:
            self.card_backing_check()
        return CreditHoldPayment(self._ledger(), user_id=principal.user_id, generation_id=generation_id,
                                 images=images, timeout_s=self.settings.hold_timeout_s)

    async def create(self, principal: Principal, request: GenerationRequest, idempotency_key: str, *,
                     payment: Callable[[str], Payment] | None = None, fresh_key: bool = False) -> GenerationRow:
        """The generation for (caller, key): started now, or the one a retry of the same request started.

        ``payment(generation_id)`` builds the payment (default: the caller's card credits).
        ``fresh_key``: the caller made the key up just now, so no earlier generation can have it.
        """
        digest = request_hash(request)
        if not fresh_key:
            existing = await self.db.read(lambda conn: Repository.by_key(conn, principal.owner, idempotency_key))
            if existing is not None:
                return self._same_request(existing, digest)
        self.runner.reserve()
        started = False
        try:
            now = now_us()
            candidate = GenerationRow(
                id=uuid.uuid4().hex, owner=principal.owner, user_id=principal.user_id,
                idempotency_key=idempotency_key, request_hash=digest, prompt=request.prompt,
                params=msgspec.to_builtins(request.params), status="queued", error_code="", error="",
                payment_kind="credits" if payment is None else "pending", created_us=now, updated_us=now,
            )
            pay = (payment or (lambda gid: self.credit_payment(principal, gid, request.params.num_images)))(
                candidate.id)
            candidate = dataclasses.replace(candidate, payment_kind=pay.kind)
            # Not fsynced on its own: the hold that follows is (WAL order makes this row durable with it).
            row = await self.db.write(lambda conn: Repository.insert(conn, candidate, lease_owner=self.db.replica_id),
                                      durable=False)
            if row.id != candidate.id:  # a concurrent request with the same key won the insert
                return self._same_request(row, digest)
            try:
                await pay.authorize()
            except BaseException:
                await self.db.write(lambda conn: Repository.delete_unstarted(conn, row.id), durable=False)
                raise
            job = self.runner.start(row, pay)
            started = True
        finally:
            if not started:
                self.runner.unreserve()
        try:
            await asyncio.wait_for(asyncio.shield(job.accepted), ACCEPT_WAIT_S)
        except TimeoutError:
            return row  # still queued at inference: answered 202, the events stream tells the rest
        return dataclasses.replace(row, status="running")

    def _same_request(self, existing: GenerationRow, digest: str) -> GenerationRow:
        if existing.request_hash != digest:
            raise IdempotencyKeyReused("This Idempotency-Key was already used for a different request; "
                                       "use a new key for a new generation")
        return existing

    async def get(self, principal: Principal, generation_id: str) -> GenerationRow:
        row = await self.db.read(lambda conn: Repository.get(conn, generation_id))
        if row is None or row.owner != principal.owner:
            raise GenerationNotFound("No such generation")
        return row

    async def wait(self, generation_id: str) -> None:
        job = self.runner.jobs.get(generation_id)
        if job is not None:
            await job.finished.wait()

    async def page(self, principal: Principal, cursor: str, limit: int) -> GenerationPage:
        if not 1 <= limit <= PAGE_MAX:
            raise ClientError(f"limit must be 1..{PAGE_MAX}", code="invalid_limit")
        before = _decode_cursor(cursor) if cursor else None
        rows = await self.db.read(lambda conn: Repository.page(conn, principal.owner, before=before,
                                                               limit=limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1]) if more and rows else None
        return GenerationPage(items=[self.view(r) for r in rows], next_cursor=next_cursor)

    def events_url(self, generation_id: str) -> str:
        return f"{self.settings.base_url}/v1/generations/{generation_id}/events"

    def view(self, row: GenerationRow) -> GenerationView:
        released = row.status == "succeeded"
        images = [ImageView(url=self.signer.url(i.sha256), sha256=i.sha256, index=i.index, width=i.width,
                            height=i.height, seed=i.seed, model=i.model) for i in row.images] if released else []
        return GenerationView(
            id=row.id, status=row.status, prompt=row.prompt, params=row.params, images=images,
            error=row.error or None, error_code=row.error_code or None, payment=row.payment_kind,
            created_at=_iso(row.created_us), updated_at=_iso(row.updated_us), events_url=self.events_url(row.id),
        )

    async def owns_image(self, principal: Principal, sha256: str) -> bool:
        return await self.db.read(lambda conn: Repository.owns_image(conn, principal.owner, sha256))

    async def recover(self) -> int:
        """After a restart: finish every card generation left queued or running, exactly once.

        Images recorded → their holds are posted (delivery was decided before the crash); none →
        every hold is voided. Both are idempotent on the ledger, so a crash during recovery is fine.
        With replicas on one PostgreSQL database (run periodically there), only the generations of
        replicas that are gone are taken, each by the one replica whose take-over wins.
        """
        leases = await self.db.read(Repository.unfinished_leases)
        rows = []
        for row in await self.db.read(Repository.unfinished):
            dead = leases.get(row.id, "")
            if await self.db.replica_alive(dead):
                continue
            if await self.db.write(functools.partial(Repository.take_over, generation_id=row.id, dead_owner=dead,
                                                     new_owner=self.db.replica_id)):
                rows.append(row)
        for row in rows:
            if row.payment_kind != "credits":
                log.warning("generation_left_for_its_payment_domain", generation_id=row.id, payment=row.payment_kind)
                continue
            payment = CreditHoldPayment(self._ledger(), user_id=row.user_id, generation_id=row.id,
                                        images=int(row.params.get("num_images", 1)),
                                        timeout_s=self.settings.hold_timeout_s)
            status, code, error = "failed", "interrupted", "The gateway restarted during the generation; not charged"
            if row.images:
                try:
                    await payment.capture([i.index for i in row.images])
                    status, code, error = "succeeded", "", ""
                except (HoldExpired, HoldResolved, HoldNotFound):
                    await payment.release("interrupted")
            else:
                await payment.release("interrupted")
            await self._set_status(row.id, status, code, error)
            log.info("generation_recovered", generation_id=row.id, status=status)
        return len(rows)


    async def _set_status(self, generation_id: str, status: str, code: str, error: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            Repository.set_status(conn, generation_id, status, now_us(), error_code=code, error=error)

        await self.db.write(write)


def _encode_cursor(row: GenerationRow) -> str:
    return base64.urlsafe_b64encode(json.dumps([row.created_us, row.id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        created_us, generation_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(created_us, int) or not isinstance(generation_id, str):
            raise ValueError
        return created_us, generation_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ClientError("The cursor is not valid; use next_cursor from the previous page",
                          code="invalid_cursor") from None
