"""Wallet sign-in: a one-time challenge, a CIP-30 ``signData`` over it, then a session for the address."""

from __future__ import annotations

import time
from typing import Any, Protocol

from gateway.accounts.principal import Principal
from gateway.web3.address import WalletAddress, parse_address
from gateway.web3.challenge import make_challenge, nonce_of
from gateway.web3.cip8 import open_sign_data
from gateway.web3.errors import InvalidSignature
from gateway.web3.store import Web3Store

__all__ = ["SessionIssuer", "WalletAuthService"]


class SessionIssuer(Protocol):
    """What accounts' ``TokenService`` offers: a session (access + refresh token) for a principal."""

    async def issue(self, principal: Principal) -> Any: ...


class WalletAuthService:
    def __init__(self, store: Web3Store, sessions: SessionIssuer, *, domain: str, network_id: int,
                 ttl_s: int) -> None:
        self.store = store
        self.sessions = sessions
        self.domain = domain
        self.network_id = network_id
        self.ttl_s = ttl_s

    def _address(self, text: str) -> WalletAddress:
        address = parse_address(text, self.network_id)
        if address.payment_key_hash is None:
            raise InvalidSignature("a script address cannot sign in with signData")
        return address

    async def challenge(self, address_text: str) -> dict[str, str]:
        address = self._address(address_text)
        challenge = make_challenge(domain=self.domain, address=address.bech32, network_id=self.network_id,
                                   ttl_s=self.ttl_s)
        await self.store.add_challenge(challenge.nonce, address.bech32, challenge.text,
                                       challenge.expires_at.timestamp())
        return {"payload": challenge.payload_hex, "expires_at": challenge.expires_at_iso}

    async def verify(self, address_text: str, signature: str, key: str) -> Any:
        """Check the signature completely, spend the challenge once, and issue a wallet session."""
        address = self._address(address_text)
        signed = open_sign_data(signature, key, address)
        now = time.time()
        nonce: str | None = None
        if signed.hashed:  # only a digest was signed: find which of this address's open challenges it covers
            for candidate, text in await self.store.open_challenges(address.bech32, now):
                if signed.signs(text.encode("utf-8")):
                    nonce = candidate
                    break
        else:
            named = nonce_of(signed.payload)
            if named is not None:
                for open_nonce, text in await self.store.open_challenges(address.bech32, now):
                    if open_nonce == named and signed.signs(text.encode("utf-8")):
                        nonce = named
        if nonce is None or not await self.store.use_challenge(nonce, address.bech32, now):
            raise InvalidSignature("the signed payload is not an open challenge for this address"
                                   " (unknown, expired or already used): ask for a new one")
        return await self.sessions.issue(Principal(kind="wallet", subject=address.bech32))
