"""Fixed-window rate limits with their counters in the database.

The counters live in the gateway database (not process memory) so replicas sharing one database
share the limits. One hit per bucket per call, all buckets in one transaction; the first bucket over
its limit answers 429 with ``Retry-After`` = seconds to the end of its window.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from common.logging import get_logger
from gateway.accounts import repository
from gateway.lib.db import Database
from gateway.lib.errors import TooManyRequests

__all__ = ["RateLimiter"]

log = get_logger("gateway.ratelimit")


class RateLimiter:
    def __init__(self, db: Database, *, limit: int, window_s: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.limit = limit
        self.window_s = window_s
        self.clock = clock

    async def hit(self, buckets: Sequence[str], *, what: str) -> None:
        """Count one attempt in every bucket; raise TooManyRequests when any is over the limit."""
        now = self.clock()
        window_start = int(now // self.window_s) * self.window_s

        def count(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            return [(bucket, repository.count_hit(conn, bucket, window_start)) for bucket in buckets]

        # A counter lost in a power cut only forgives a few attempts: no fsync per login.
        over = [bucket for bucket, hits in await self.db.write(count, durable=False) if hits > self.limit]
        if over:
            retry_after_s = max(1, int(window_start + self.window_s - now + 0.999))
            log.info("auth_rate_limited", what=what, bucket_kind=over[0].split(":", 2)[1], retry_after_s=retry_after_s)
            raise TooManyRequests(
                f"Too many {what} attempts; try again in {retry_after_s} s", retry_after_s=retry_after_s
            )

    async def purge(self) -> int:
        """Drop windows that ended (run periodically; they no longer limit anyone)."""
        before = int(self.clock()) - 2 * self.window_s
        return await self.db.write(lambda conn: repository.purge_rate_windows(conn, before), durable=False)
