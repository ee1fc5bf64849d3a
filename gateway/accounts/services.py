"""The accounts service layer: sign-up, login, logout and the account view.

``TokenService`` (re-exported here) is what other domains use to start a session, e.g. web3 after a
verified CIP-30 ``signData``: ``await container.get(TokenService).issue(Principal("wallet", address))``.
"""

from __future__ import annotations

import time
import uuid

from common.logging import get_logger
from gateway.accounts import repository
from gateway.accounts.passwords import Passwords
from gateway.accounts.principal import Principal
from gateway.accounts.ratelimit import RateLimiter
from gateway.accounts.repository import User
from gateway.accounts.schemas import AccountView, TokenPair
from gateway.accounts.tokens import TokenService
from gateway.accounts.validation import check_password, normalise_email
from gateway.credits.ledger import Ledger
from gateway.lib.db import Database
from gateway.lib.errors import Conflict, Forbidden, NotFound, Unauthorized
from gateway.settings import GatewaySettings

__all__ = ["AccountService", "TokenService"]

log = get_logger("gateway.accounts")


class EmailTaken(Conflict):
    code = "email_taken"


class AccountService:
    def __init__(self, settings: GatewaySettings, db: Database, tokens: TokenService, passwords: Passwords,
                 limiter: RateLimiter) -> None:
        self.settings = settings
        self.db = db
        self.tokens = tokens
        self.passwords = passwords
        self.limiter = limiter

    async def signup(self, *, email: str, password: str, client: str) -> TokenPair:
        await self.limiter.hit([f"signup:ip:{client}"], what="sign-up")
        email = normalise_email(email)
        await self.limiter.hit([f"signup:email:{email}"], what="sign-up")
        check_password(password, email=email, min_length=self.settings.password_min_length)
        user = User(id=uuid.uuid4().hex, email=email, password_hash=await self.passwords.hash(password),
                    created_at=time.time())
        if not await self.db.write(lambda conn: repository.insert_user(conn, user)):
            raise EmailTaken("An account with this email already exists; sign in instead")
        log.info("account_created", user_id=user.id)
        return await self.tokens.issue(Principal(kind="user", subject=user.id, email=email))

    async def login(self, *, email: str, password: str, client: str) -> TokenPair:
        wrong = Unauthorized("The email or password is incorrect", code="invalid_credentials")
        await self.limiter.hit([f"login:ip:{client}"], what="login")
        try:
            email = normalise_email(email)
        except Exception:
            raise wrong from None
        await self.limiter.hit([f"login:email:{email}"], what="login")
        user = await self.db.read(lambda conn: repository.find_user_by_email(conn, email))
        if not await self.passwords.verify(user.password_hash if user else None, password) or user is None:
            log.info("login_failed", known_email=user is not None)
            raise wrong
        return await self.tokens.issue(Principal(kind="user", subject=user.id, email=user.email))

    async def logout(self, principal: Principal, *, family_id: str, refresh_token: str) -> None:
        if refresh_token:
            await self.tokens.revoke(refresh_token=refresh_token)
        if family_id:
            await self.tokens.revoke(family_id=family_id)
        log.info("session_revoked", kind=principal.kind)

    async def user(self, user_id: str) -> User | None:
        return await self.db.read(lambda conn: repository.find_user_by_id(conn, user_id))

    async def account(self, principal: Principal, ledger: Ledger) -> AccountView:
        if not principal.user_id:
            raise Forbidden("This wallet session has no card account; sign in with email to see credits",
                            code="no_card_account")
        user = await self.user(principal.user_id)
        if user is None:
            raise NotFound("The account no longer exists", code="account_not_found")
        balance = await ledger.balance(user.id)
        return AccountView(email=user.email, credits_available=balance.available, credits_pending=balance.pending,
                           frozen=balance.frozen, frozen_reason=balance.frozen_reason)


