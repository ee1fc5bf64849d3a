"""Speculative generation for a quote: start when the payment is seen, release images only at depth.

``QuotePayment`` follows the generations domain's ``Payment`` protocol (``authorize`` →
generation → ``wait_until_releasable`` → ``capture``/``release``):

- ``authorize`` returns as soon as the payment may be generated for: the quote's own tx (whose bytes
  we built, so its content is known) once it is in the mempool or a block; a tx the artist built by
  hand once it is in a block and meets the on-chain rules. An unpaid quote that expires fails.
- ``wait_until_releasable`` follows the tx until it is ``min_confirmations`` deep, checking the rules
  on chain each time it is in a block, and then records the redemption (unique tx, unique quote). A
  rollback before the depth puts it back to waiting; expiry while not in a block fails it.

Status changes come from the indexer's ``WatchTransactions`` stream, pumped into a queue; when nothing
arrives for ``poll_s`` the status is read afresh (so the tip passing the TTL is noticed too).

``PaidGenerator`` is what runs the images (the generations domain's job runner, which keeps images
hidden until ``wait_until_releasable`` returns); ``QuoteRunner`` drives one task per redeemed quote.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from common.cardano import AssetId
from common.logging import get_logger
from gateway.lib.errors import GatewayError
from gateway.web3.chain import Chain, TxNotFound, TxState, TxStatus
from gateway.web3.errors import ChainUnavailable, PaymentNotValid, QuoteExpired
from gateway.web3.metrics import PAYMENT_SECONDS, PAYMENTS, QUOTES_WAITING
from gateway.web3.rules import Expectation, depth_verdict, payment_problem
from gateway.web3.store import QuoteRow, Web3Store

__all__ = ["PaidGenerator", "PaymentTerms", "QuotePayment", "QuoteRunner"]

log = get_logger("gateway.web3.payment")


class PaymentLike(Protocol):
    kind: str

    async def authorize(self) -> None: ...
    async def wait_until_releasable(self) -> None: ...
    async def capture(self, delivered: Sequence[int]) -> None: ...
    async def release(self, reason: str) -> None: ...


class PaidGenerator(Protocol):
    """Runs one generation paid by ``payment`` and returns the released image URLs (or raises)."""

    async def run(self, *, owner: str, prompt: str, params: dict[str, Any], payment: PaymentLike) -> list[str]: ...


@dataclass(frozen=True)
class PaymentTerms:
    pay_to: str  # bech32
    asset: AssetId
    price: int
    min_confirmations: int
    poll_s: float = 0.5


class QuotePayment:
    kind = "web3"

    def __init__(self, store: Web3Store, chain: Chain, terms: PaymentTerms, quote: QuoteRow, tx_id: str, *,
                 accepted: bool = False) -> None:
        self.store, self.chain, self.terms, self.quote, self.tx_id = store, chain, terms, quote, tx_id
        self.expect = Expectation(quote.id, terms.pay_to, terms.asset, terms.price, quote.ttl_slot)
        self.known_body = tx_id == quote.tx_id
        self.accepted = accepted and self.known_body  # we submitted it and the node took it into its mempool
        self.generation: tuple[str, str] | None = None  # (generation id, its SSE events URL), once known
        self.depth = 0

    def bind_generation(self, generation_id: str, events_url: str) -> QuotePayment:
        """Called by the generator when it creates the generation: recorded on the quote at authorize."""
        self.generation = (generation_id, events_url)
        return self

    async def _statuses(self) -> AsyncGenerator[TxStatus, None]:
        queue: asyncio.Queue[TxStatus] = asyncio.Queue(maxsize=64)

        async def pump() -> None:
            while True:
                try:
                    async for status in self.chain.watch([self.tx_id]):
                        with contextlib.suppress(asyncio.QueueFull):
                            queue.put_nowait(status)
                except GatewayError as exc:  # the stream broke: the reads below carry on, reopen it later
                    log.debug("web3_watch_broken", tx_id=self.tx_id, code=exc.code)
                await asyncio.sleep(self.terms.poll_s)

        pumper = asyncio.create_task(pump())
        try:
            with contextlib.suppress(ChainUnavailable):  # where it stands now, without waiting for a change
                yield await self.chain.tx_status(self.tx_id)
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), self.terms.poll_s)
                except TimeoutError:
                    with contextlib.suppress(ChainUnavailable):
                        yield await self.chain.tx_status(self.tx_id)
        finally:
            pumper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumper

    def _check_expiry(self, status: TxStatus) -> None:
        if status.state != TxState.CONFIRMED and status.tip_slot >= self.quote.ttl_slot:
            raise QuoteExpired(f"the quote expired at slot {self.quote.ttl_slot} before its payment was in a block")

    async def _rules_hold(self) -> bool:
        """True when the tx on chain is a valid payment; PaymentNotValid when it is not; False when the
        indexer cannot say right now (checked again at the next status)."""
        try:
            tx = await self.chain.transaction(self.tx_id)
        except TxNotFound:
            raise PaymentNotValid(
                f"the transaction does not pay {self.terms.pay_to}: the indexer records no such payment") from None
        except ChainUnavailable:
            return False
        problem = payment_problem(tx, self.expect)
        if problem is not None:
            raise PaymentNotValid(problem)
        return True

    async def authorize(self) -> None:
        if self.generation is not None:
            await self.store.set_generation(self.quote.id, *self.generation)
        if self.accepted:
            return
        statuses = self._statuses()
        try:
            async for status in statuses:
                if status.state == TxState.CONFIRMED and await self._rules_hold():
                    return
                if status.state == TxState.MEMPOOL and self.known_body:
                    return
                self._check_expiry(status)
        finally:
            await statuses.aclose()

    async def wait_until_releasable(self) -> None:
        statuses = self._statuses()
        checked_block: int | None = None
        try:
            async for status in statuses:
                verdict = depth_verdict(status, self.terms.min_confirmations)
                if status.state == TxState.CONFIRMED and checked_block != status.block_height:
                    if not await self._rules_hold():
                        continue
                    checked_block = status.block_height
                if verdict.state == "releasable":
                    self.depth = verdict.depth
                    await self.store.redeem(self.quote.id, self.tx_id, verdict.depth)
                    return
                if status.state != TxState.CONFIRMED:
                    checked_block = None  # rolled back or back in the mempool: check again when re-included
                self._check_expiry(status)
        finally:
            await statuses.aclose()

    async def capture(self, delivered: Sequence[int]) -> None:
        return None  # the token moved on chain; nothing to settle here

    async def release(self, reason: str) -> None:
        return None  # nothing was held: an unpaid or refused quote simply ends


class QuoteRunner:
    """One task per claimed quote: generation through ``PaidGenerator`` with a ``QuotePayment``."""

    def __init__(self, store: Web3Store, chain: Chain, terms: PaymentTerms, generator: PaidGenerator | None) -> None:
        self.store, self.chain, self.terms, self.generator = store, chain, terms, generator
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, quote: QuoteRow, tx_id: str, *, accepted: bool = False) -> None:
        """Follow ``tx_id`` as ``quote``'s payment (``accepted``: we just submitted it successfully)."""
        task = self._tasks.get(quote.id)
        if task is not None and not task.done():
            return
        self._tasks[quote.id] = asyncio.create_task(self._run(quote, tx_id, accepted),
                                                    name=f"web3-quote:{quote.id}")

    async def _run(self, quote: QuoteRow, tx_id: str, accepted: bool) -> None:
        started = time.monotonic()
        QUOTES_WAITING.inc()
        try:
            outcome = await self._follow(quote, tx_id, accepted)
        finally:
            QUOTES_WAITING.dec()
            self._tasks.pop(quote.id, None)  # finished: its outcome is in the store
        PAYMENTS.labels(outcome).inc()
        PAYMENT_SECONDS.labels(outcome).observe(time.monotonic() - started)

    async def _follow(self, quote: QuoteRow, tx_id: str, accepted: bool) -> str:
        payment = QuotePayment(self.store, self.chain, self.terms, quote, tx_id, accepted=accepted)
        try:
            if self.generator is None:
                raise GatewayError("image generation is not installed in this gateway", code="no_generator")
            urls = await self.generator.run(owner=quote.owner, prompt=quote.prompt, params=quote.params,
                                            payment=payment)
        except asyncio.CancelledError:
            raise
        except GatewayError as exc:
            state = "expired" if exc.code == QuoteExpired.code else "failed"
            log.info("web3_quote_failed", quote_id=quote.id, tx_id=tx_id, code=exc.code, reason=exc.detail)
            await self.store.finish(quote.id, state=state, error=f"{exc.code}: {exc.detail}")
            return state
        except Exception as exc:
            log.exception("web3_quote_crashed", quote_id=quote.id, tx_id=tx_id)
            await self.store.finish(quote.id, state="failed", error=f"internal_error: {type(exc).__name__}")
            return "failed"
        log.info("web3_quote_delivered", quote_id=quote.id, tx_id=tx_id, depth=payment.depth, images=len(urls))
        await self.store.finish(quote.id, state="delivered", image_urls=urls)
        return "delivered"

    async def wait(self, quote_id: str, timeout_s: float) -> None:
        task = self._tasks.get(quote_id)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout_s)

    async def resume(self) -> None:
        """After a restart: follow every quote that was waiting for its payment or its images."""
        for quote in await self.store.waiting_quotes():
            if quote.paid_tx_id:
                self.start(quote, quote.paid_tx_id)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
