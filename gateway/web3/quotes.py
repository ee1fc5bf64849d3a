"""The wallet payment service: config, balances, quotes, submit/confirm, and the seed's two calls."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

from common.cardano import AssetId, is_hex, lovelace_to_ada
from gateway.accounts.principal import Principal
from gateway.lib.errors import ClientError, NotFound, TooManyRequests
from gateway.web3.address import WalletAddress, parse_address
from gateway.web3.chain import Chain, LedgerRefusal, TxState, Utxo
from gateway.web3.errors import InsufficientCreate, LedgerRefused, QuoteExpired, QuoteNotCoverable
from gateway.web3.metrics import QUOTES
from gateway.web3.payment import PaymentTerms, QuoteRunner
from gateway.web3.splice import splice_witnesses
from gateway.web3.store import QuoteRow, Web3Store
from gateway.web3.txbuild import FeeParams, WalletUtxo, build_quote_tx

__all__ = ["MAX_CLIENT_UTXOS", "QuoteService", "Web3Config"]

MAX_CLIENT_UTXOS = 256
MAX_UTXO_HEX = 40_000
# Only an address holding $CREATE gets a quote (402 first), so a cap per address bounds the rows anyone
# can make; a page needs one or two at a time.
MAX_OPEN_QUOTES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Web3Config:
    network_id: int
    asset: AssetId
    pay_to: WalletAddress
    price: int
    min_confirmations: int
    quote_ttl_s: int
    confirm_wait_s: float

    @property
    def terms(self) -> PaymentTerms:
        return PaymentTerms(self.pay_to.bech32, self.asset, self.price, self.min_confirmations)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client_out_refs(utxos_hex: list[str]) -> list[tuple[str, int]]:
    """Out-refs of CIP-30 ``getUtxos()`` entries (TransactionUnspentOutput ``[input, output]`` hex)."""
    if len(utxos_hex) > MAX_CLIENT_UTXOS:
        raise ClientError(f"at most {MAX_CLIENT_UTXOS} utxos", code="too_many_utxos")
    refs: list[tuple[str, int]] = []
    for position, text in enumerate(utxos_hex):
        try:
            if not isinstance(text, str) or len(text) > MAX_UTXO_HEX:
                raise ValueError("too long")
            item = cbor2.loads(bytes.fromhex(text))
            tx_hash, index = item[0][0], item[0][1]
            if not isinstance(tx_hash, bytes) or len(tx_hash) != 32 or not isinstance(index, int) or index < 0:
                raise ValueError("bad input")
        except (ValueError, TypeError, IndexError, KeyError, cbor2.CBORDecodeError, EOFError):
            raise ClientError(f"utxos[{position}] is not a CIP-30 TransactionUnspentOutput hex",
                              code="invalid_utxo") from None
        refs.append((tx_hash.hex(), index))
    return refs


class QuoteService:
    def __init__(self, store: Web3Store, chain: Chain, config: Web3Config, runner: QuoteRunner) -> None:
        self.store, self.chain, self.config, self.runner = store, chain, config, runner

    def address(self, text: str) -> WalletAddress:
        return parse_address(text, self.config.network_id)

    def public_config(self) -> dict[str, Any]:
        c = self.config
        return {"network_id": c.network_id, "asset": {"policy_id": c.asset.policy_id, "asset_name": c.asset.asset_name},
                "pay_to_address": c.pay_to.bech32, "price": c.price, "min_confirmations": c.min_confirmations,
                "quote_ttl_s": c.quote_ttl_s}

    async def balance(self, address_text: str) -> dict[str, Any]:
        address = self.address(address_text)
        balance = await self.chain.balance(address.bech32, self.config.asset)
        return {"address": address.bech32, "lovelace": balance.lovelace, "ada": str(lovelace_to_ada(balance.lovelace)),
                "create": balance.quantity,
                "asset": {"policy_id": self.config.asset.policy_id, "asset_name": self.config.asset.asset_name},
                "utxo_count": balance.utxo_count}

    async def _wallet_utxos(self, address: WalletAddress, utxos_hex: list[str] | None) -> list[WalletUtxo]:
        """The client's UTxOs as the chain knows them (never the client's values), plus the indexer's view."""
        seen: list[Utxo] = []
        if utxos_hex:
            seen.extend(await self.chain.utxos_by_ref(_client_out_refs(utxos_hex)))
        seen.extend(await self.chain.utxos_at(address.bech32))
        out: dict[tuple[str, int], WalletUtxo] = {}
        for utxo in seen:
            if utxo.has_script_ref:
                continue
            try:
                owner = self.address(utxo.address)
            except ClientError:
                continue
            out.setdefault((utxo.tx_id, utxo.index), WalletUtxo(utxo.tx_id, utxo.index, owner, utxo.value))
        return list(out.values())

    async def create(self, *, owner: str, address_text: str, prompt: str, params: dict[str, Any],
                     utxos_hex: list[str] | None) -> dict[str, Any]:
        address = self.address(address_text)
        if address.payment_key_hash is None:
            raise ClientError("a script address cannot pay from a CIP-30 wallet here", code="invalid_address")
        validate = getattr(self.runner.generator, "validate", None)
        if validate is not None:
            validate(prompt, params)  # refuse now what the generator would refuse after the payment
        tip, params_now, utxos = await asyncio.gather(
            self.chain.tip(), self.chain.protocol_params(), self._wallet_utxos(address, utxos_hex))
        quote_id = secrets.token_hex(16)
        fee_params = FeeParams(params_now.min_fee_a, params_now.min_fee_b, params_now.coins_per_utxo_byte,
                               params_now.max_tx_size, params_now.max_value_size or 5000)
        ttl_slot = tip.slot + self.config.quote_ttl_s  # one slot per second on every Shelley-era network
        if await self.store.open_quotes(address.bech32, time.time()) >= MAX_OPEN_QUOTES_PER_ADDRESS:
            raise TooManyRequests(f"this address already has {MAX_OPEN_QUOTES_PER_ADDRESS} open quotes: pay or let"
                                  " them expire", retry_after_s=60, code="too_many_quotes")
        try:
            tx = build_quote_tx(utxos, pay_to=self.config.pay_to, change_to=address, asset=self.config.asset,
                                price=self.config.price, params=fee_params, ttl_slot=ttl_slot,
                                network_id=self.config.network_id, quote_id=quote_id)
        except InsufficientCreate:
            QUOTES.labels("insufficient").inc()
            raise
        except QuoteNotCoverable:
            QUOTES.labels("not_coverable").inc()
            raise
        QUOTES.labels("built").inc()
        now = time.time()
        expires_at = now + self.config.quote_ttl_s
        await self.store.add_quote(QuoteRow(
            quote_id, owner, address.bech32, prompt, params, tx.cbor, tx.tx_id, tx.fee, tx.signers, ttl_slot,
            expires_at, now, "open", None, None, None))
        return {"quote_id": quote_id, "tx_cbor": tx.cbor.hex(), "tx_id": tx.tx_id, "fee": tx.fee,
                "expires_at": _iso(expires_at)}

    async def _owned(self, quote_id: str, principal: Principal | None) -> QuoteRow:
        if not (isinstance(quote_id, str) and is_hex(quote_id, 32)):
            raise NotFound("no such quote", code="quote_not_found")
        quote = await self.store.quote(quote_id)
        if quote is None:
            raise NotFound("no such quote", code="quote_not_found")
        anonymous = quote.owner.startswith("address:")
        if (not anonymous and (principal is None or principal.owner != quote.owner)) or (
                anonymous and principal is not None and principal.kind == "wallet"
                and principal.subject != quote.address):
            raise NotFound("no such quote", code="quote_not_found")  # another artist's quote does not exist for you
        return quote

    async def _not_expired(self, quote: QuoteRow) -> None:
        tip = await self.chain.tip()
        if tip.slot >= quote.ttl_slot:
            raise QuoteExpired("this quote has expired: ask for a new one")

    async def submit(self, quote_id: str, witness_set: str, principal: Principal | None) -> dict[str, Any]:
        quote = await self._owned(quote_id, principal)
        if quote.paid_tx_id == quote.tx_id and quote.state in ("paid", "delivered"):
            return self.view(quote)  # a replayed submit is a no-op
        if quote.paid_tx_id == quote.tx_id and quote.state == "waiting":
            status = await self.chain.tx_status(quote.tx_id)
            if status.state not in (TxState.UNKNOWN, TxState.ROLLED_BACK):
                return self.view(quote)  # still on its way: a replay is a no-op
            # else the chain lost it (a rollback dropped it, a mempool flush): send the same tx again
        await self._not_expired(quote)
        signed = splice_witnesses(quote.tx_cbor, witness_set, tx_id=quote.tx_id, required_signers=quote.signers)
        try:
            await self.chain.submit(signed.cbor)
        except LedgerRefusal as exc:
            # A retry after a submission that timed out but went through: the node has this very tx.
            if (await self.chain.tx_status(quote.tx_id)).state not in (TxState.MEMPOOL, TxState.CONFIRMED):
                raise LedgerRefused(f"the ledger refused the transaction: {exc.reason}",
                                    extra={"ledger_code": exc.code}) from None
        return await self._claim(quote, quote.tx_id, accepted=True)

    async def confirm(self, quote_id: str, tx_id: str, principal: Principal | None) -> dict[str, Any]:
        if not (isinstance(tx_id, str) and is_hex(tx_id, 64)):
            raise ClientError("tx_id must be 64 lowercase hex characters", code="invalid_tx_id")
        quote = await self._owned(quote_id, principal)
        return await self._claim(quote, tx_id)

    async def _claim(self, quote: QuoteRow, tx_id: str, *, accepted: bool = False) -> dict[str, Any]:
        claimed = await self.store.claim(quote.id, tx_id)
        if claimed.state in ("waiting", "paid"):
            self.runner.start(claimed, tx_id, accepted=accepted)
        return self.view(claimed)

    def view(self, quote: QuoteRow) -> dict[str, Any]:
        return {"quote_id": quote.id, "state": quote.state, "tx_id": quote.paid_tx_id or quote.tx_id,
                "expires_at": _iso(quote.expires_at), "image_urls": quote.image_urls, "error": quote.error,
                "generation_id": quote.generation_id, "events_url": quote.events_url}

    async def status(self, quote_id: str, principal: Principal | None) -> dict[str, Any]:
        return self.view(await self._owned(quote_id, principal))

    async def status_row(self, quote_id: str, principal: Principal | None) -> QuoteRow:
        return await self._owned(quote_id, principal)

    async def wait_for_images(self, quote_id: str, principal: Principal | None, timeout_s: float) -> QuoteRow:
        await self.runner.wait(quote_id, timeout_s)
        return await self._owned(quote_id, principal)
