"""Wallet sign-in: a one-time challenge, a CIP-30 ``signData`` over it, then a session for the address."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from gateway.accounts.principal import Principal
from gateway.web3.address import WalletAddress, parse_address
from gateway.web3.challenge import make_challenge, nonce_of
from gateway.web3.cip8 import open_sign_data
from gateway.web3.errors import InvalidSignature
from gateway.web3.metrics import SIGN_INS
from gateway.web3.store import Web3Store

__all__ = ["SessionIssuer", "WalletAuthService"]


class Limiter(Protocol):
    """What accounts' ``RateLimiter`` offers: TooManyRequests (429) past the per-minute limit of a bucket."""

    async def hit(self, buckets: Sequence[str], *, what: str) -> None: ...


class SessionIssuer(Protocol):
    """What accounts' ``TokenService`` offers: a session (access + refresh token) for a principal."""

    async def issue(self, principal: Principal) -> Any: ...


class WalletAuthService:
    def __init__(self, store: Web3Store, sessions: SessionIssuer, *, domain: str, network_id: int,
                 ttl_s: int, limiter: Limiter | None = None) -> None:
        self.store = store
        self.limiter = limiter
        self.sessions = sessions
        self.domain = domain
        self.network_id = network_id
        self.ttl_s = ttl_s

    def _address(self, text: str) -> WalletAddress:
        address = parse_address(text, self.network_id)
        if address.payment_key_hash is None:
            raise InvalidSignature("a script address cannot sign in with signData")
        return address

    async def challenge(self, address_text: str, client: str = "") -> dict[str, str]:
        address = self._address(address_text)
        if self.limiter is not None:  # each challenge is a row: bounded per client and per address
            await self.limiter.hit([f"wallet-challenge:ip:{client}", f"wallet-challenge:address:{address.bech32}"],
                                   what="wallet sign-in challenge")
        challenge = make_challenge(domain=self.domain, address=address.bech32, network_id=self.network_id,
                                   ttl_s=self.ttl_s)
        await self.store.add_challenge(challenge.nonce, address.bech32, challenge.text,
                                       challenge.expires_at.timestamp())
        return {"payload": challenge.payload_hex, "expires_at": challenge.expires_at_iso}

    async def verify(self, address_text: str, signature: str, key: str, client: str = "",
                     link_to: Principal | None = None) -> Any:
        """Check the signature completely, spend the challenge once, and issue a wallet session.

        ``link_to``: a signed-in card account (the caller's bearer token) the wallet session is linked to,
        so it can also spend that account's credits."""
        address = self._address(address_text)
        if self.limiter is not None:
            await self.limiter.hit([f"wallet-verify:ip:{client}"], what="wallet sign-in")
        try:
            session = await self._verified_session(address, signature, key, link_to)
        except InvalidSignature:
            SIGN_INS.labels("refused").inc()
            raise
        SIGN_INS.labels("ok").inc()
        return session

    async def _verified_session(self, address: WalletAddress, signature: str, key: str,
                                link_to: Principal | None) -> Any:
        signed = open_sign_data(signature, key, address)
        now = time.time()
        nonce: str | None = None
        if signed.hashed:  # only a digest was signed: find which of this address's open challenges it covers
            for candidate, candidate_text in await self.store.open_challenges(address.bech32, now):
                if signed.signs(candidate_text.encode("utf-8")):
                    nonce = candidate
                    break
        else:
            named = nonce_of(signed.payload)
            text = await self.store.open_challenge(named, address.bech32, now) if named else None
            if text is not None and signed.signs(text.encode("utf-8")):
                nonce = named
        if nonce is None or not await self.store.use_challenge(nonce, address.bech32, now):
            raise InvalidSignature("the signed payload is not an open challenge for this address"
                                   " (unknown, expired or already used): ask for a new one")
        if link_to is not None and link_to.kind == "user":
            return await self.sessions.issue(Principal(kind="wallet", subject=address.bech32, email=link_to.email,
                                                       linked_user_id=link_to.subject))
        return await self.sessions.issue(Principal(kind="wallet", subject=address.bech32))
