"""Access tokens (short-lived JWT, HS256) and rotating refresh tokens with reuse detection.

Access token claims: ``sub`` (user id or wallet address), ``kind`` (user | wallet), ``iat``, ``exp``,
``jti``, ``fam`` (the refresh family, so logout with only a bearer token revokes the session), and
``email`` / ``uid`` (a wallet session's linked card account) when set. Access tokens are checked
without a database read; they expire after ``access_token_ttl_s`` (logout cannot recall one).

Refresh tokens are opaque random strings stored as SHA-256 digests. Each use spends the token and
issues the next one in the same family; presenting a spent token again (a stolen copy, or the victim
after the thief) revokes the whole family.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from gateway.accounts import repository
from gateway.accounts.principal import Principal
from gateway.accounts.repository import StoredSession
from gateway.accounts.schemas import TokenPair
from gateway.lib.db import Database
from gateway.lib.errors import Unauthorized
from gateway.lib.secrets import hmac_secret
from gateway.settings import GatewaySettings

__all__ = ["TokenService"]

ALGORITHM = "HS256"
ISSUER = "creatorpass-gateway"
# Tolerated clock difference when checking exp/iat (tokens are verified by the process that issued
# them or a replica with a synchronised clock).
LEEWAY_S = 5


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    """``issue(principal)`` → a new session; ``refresh(token)`` rotates; ``verify(bearer)`` → Principal."""

    def __init__(self, settings: GatewaySettings, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.access_ttl_s = settings.access_token_ttl_s
        self.refresh_ttl_s = settings.refresh_token_ttl_s
        self._key = hmac_secret(settings, "jwt_secret")
        self.clock = clock

    def _access_token(self, principal: Principal, family_id: str, now: float) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER, "sub": principal.subject, "kind": principal.kind, "iat": int(now),
            "exp": int(now) + self.access_ttl_s, "jti": uuid.uuid4().hex, "fam": family_id,
        }
        if principal.email:
            claims["email"] = principal.email
        if principal.linked_user_id:
            claims["uid"] = principal.linked_user_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def _pair(self, principal: Principal, family_id: str, refresh_token: str, now: float) -> TokenPair:
        return TokenPair(access_token=self._access_token(principal, family_id, now), refresh_token=refresh_token,
                         expires_in=self.access_ttl_s)

    async def issue(self, principal: Principal) -> TokenPair:
        """Start a new session (a new refresh family) for ``principal`` — users and wallets alike."""
        now = self.clock()
        family_id = uuid.uuid4().hex
        refresh_token = secrets.token_urlsafe(32)
        session = StoredSession(family_id, principal.kind, principal.subject, principal.email,
                                principal.linked_user_id)
        await self.db.write(lambda conn: repository.new_family(
            conn, session, token_hash=_digest(refresh_token), now=now, expires_at=now + self.refresh_ttl_s))
        return self._pair(principal, family_id, refresh_token, now)

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = self.clock()
        next_token = secrets.token_urlsafe(32)
        outcome = await self.db.write(lambda conn: repository.rotate_refresh(
            conn, token_hash=_digest(refresh_token), next_hash=_digest(next_token), now=now,
            expires_at=now + self.refresh_ttl_s))
        if outcome.session is None:
            messages = {
                "unknown": "The refresh token is not valid",
                "expired": "The refresh token has expired; sign in again",
                "revoked": "This session was signed out; sign in again",
                "reused": "The refresh token was already used; the session is revoked for safety, sign in again",
            }
            raise Unauthorized(messages[outcome.failure], code=f"refresh_{outcome.failure}")
        s = outcome.session
        principal = Principal(kind="wallet" if s.kind == "wallet" else "user", subject=s.subject, email=s.email,
                              linked_user_id=s.linked_user_id)
        return self._pair(principal, s.family_id, next_token, now)

    async def revoke(self, *, family_id: str = "", refresh_token: str = "", reason: str = "logout") -> bool:
        """Revoke a session by family id or by any of its refresh tokens; True when one was revoked."""
        now = self.clock()

        def revoke(conn: sqlite3.Connection) -> bool:
            fam = family_id or repository.family_of_token(conn, _digest(refresh_token)) or ""
            return bool(fam) and repository.revoke_family(conn, fam, now=now, reason=reason)

        return await self.db.write(revoke)

    def decode(self, access_token: str) -> dict[str, Any]:
        """The verified claims; Unauthorized for a bad signature, an expired or a malformed token."""
        try:
            claims: dict[str, Any] = jwt.decode(
                access_token, self._key, algorithms=[ALGORITHM], issuer=ISSUER, leeway=LEEWAY_S,
                options={"require": ["sub", "exp", "iat", "jti", "kind"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired; refresh it", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is not valid", code="token_invalid") from None
        if claims.get("kind") not in ("user", "wallet") or not isinstance(claims.get("sub"), str):
            raise Unauthorized("The access token is not valid", code="token_invalid")
        return claims

    def verify(self, access_token: str) -> Principal:
        claims = self.decode(access_token)
        return Principal(kind=claims["kind"], subject=claims["sub"], email=str(claims.get("email", "")),
                         linked_user_id=str(claims.get("uid", "")))
