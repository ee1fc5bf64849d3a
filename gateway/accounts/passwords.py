"""argon2id password hashing, always off the event loop (one hash costs tens of milliseconds)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.settings import ConfigError
from gateway.settings import GatewaySettings

__all__ = ["Passwords"]


class Passwords:
    def __init__(self, settings: GatewaySettings) -> None:
        if settings.password_hash_memory_kib < 1024 or settings.password_hash_time_cost < 1:
            raise ConfigError("GATEWAY_PASSWORD_HASH_MEMORY_KIB >= 1024 and GATEWAY_PASSWORD_HASH_TIME_COST >= 1")
        self._hasher = PasswordHasher(time_cost=settings.password_hash_time_cost,
                                      memory_cost=settings.password_hash_memory_kib, parallelism=1)
        # Verified against when the email is unknown, so a login costs the same either way
        # (the response time does not tell which emails have accounts).
        self._decoy = self._hasher.hash("decoy password for unknown emails")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False
