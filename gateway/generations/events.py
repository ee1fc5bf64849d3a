"""In-process progress fan-out: one topic per generation, any number of subscribers.

A subscriber gets what is published after it subscribed; what happened before comes from the
persisted state, which the SSE handler sends first (subscribe, then read, so nothing falls between).
Each subscriber's queue is bounded: a subscriber too slow to keep up loses intermediate progress
events (it is sent one ``lagged`` event instead), never the final one, whose data the SSE handler
reads from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventHub", "GenerationEvent"]

SUBSCRIBER_QUEUE_MAX = 256
TERMINAL = ("done", "error")


@dataclass(frozen=True)
class GenerationEvent:
    kind: str  # queued, running, step, image, done, error, lagged
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL


class EventHub:
    def __init__(self) -> None:
        self._topics: dict[str, set[asyncio.Queue[GenerationEvent]]] = {}

    def publish(self, generation_id: str, event: GenerationEvent) -> None:
        for queue in self._topics.get(generation_id, ()):
            if queue.qsize() >= SUBSCRIBER_QUEUE_MAX and not event.terminal:
                if queue.qsize() == SUBSCRIBER_QUEUE_MAX:
                    queue.put_nowait(GenerationEvent("lagged"))
                continue
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self, generation_id: str) -> Iterator[asyncio.Queue[GenerationEvent]]:
        queue: asyncio.Queue[GenerationEvent] = asyncio.Queue(SUBSCRIBER_QUEUE_MAX + 2)
        self._topics.setdefault(generation_id, set()).add(queue)
        try:
            yield queue
        finally:
            subscribers = self._topics.get(generation_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._topics[generation_id]

    def subscribers(self, generation_id: str) -> int:
        return len(self._topics.get(generation_id, ()))
