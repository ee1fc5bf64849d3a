"""Accounts domain: users, sessions (JWT access + rotating refresh tokens), auth rate limits."""

from __future__ import annotations

import asyncio

from common.logging import get_logger
from gateway.accounts.controllers import AccountController, AuthController
from gateway.accounts.passwords import Passwords
from gateway.accounts.ratelimit import RateLimiter
from gateway.accounts.repository import MIGRATIONS
from gateway.accounts.services import AccountService
from gateway.accounts.tokens import TokenService
from gateway.server.container import Container

__all__ = ["MIGRATIONS", "ROUTES", "install"]

log = get_logger("gateway.accounts")
RATE_PURGE_INTERVAL_S = 60.0


async def install(container: Container) -> None:
    settings, db = container.settings, container.db
    if container.find(TokenService) is None:
        container.provide(TokenService, TokenService(settings, db))
    if container.find(RateLimiter) is None:
        container.provide(RateLimiter, RateLimiter(db, limit=settings.auth_rate_per_minute))
    if container.find(AccountService) is None:
        passwords = await asyncio.to_thread(Passwords, settings)
        container.provide(AccountService, AccountService(settings, db, container.get(TokenService), passwords,
                                                         container.get(RateLimiter)))
    limiter = container.get(RateLimiter)

    async def purge_rate_windows() -> None:
        while True:
            await asyncio.sleep(RATE_PURGE_INTERVAL_S)
            purged = await limiter.purge()
            if purged:
                log.debug("rate_windows_purged", rows=purged)

    container.add_background_task("accounts-rate-purge", purge_rate_windows)


ROUTES = [AuthController, AccountController]
