"""An in-memory InferenceClient for generation tests and the gateway bench (zero-cost stand-in).

Behaviour per request is chosen by ``behaviour`` (default for all) or per prompt via ``by_prompt``:
``ok``, ``flag`` (every image withheld), ``flag_first`` (image 0 withheld), ``busy``
(RESOURCE_EXHAUSTED before any event), ``fail`` (UNAVAILABLE after progress). ``gate``, when set,
holds every request after its first event until the test opens it. ``gate`` and ``entered`` are
threading Events: the Litestar test client runs the app on its own event loop in another thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import threading
import zlib
from collections.abc import AsyncIterator

from gateway.generations.inference import (
    Done,
    ImageOut,
    InferenceBusy,
    InferenceEvent,
    InferenceFailed,
    InferenceRequest,
    Progress,
)
from gateway.server.container import HealthResult

__all__ = ["FakeInference", "tiny_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def tiny_png(colour: bytes, size: int = 2) -> bytes:
    """A valid ``size``x``size`` RGB PNG of one colour (different colours, different sha256)."""
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + colour[:3] * size for _ in range(size))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


class FakeInference:
    def __init__(self, behaviour: str = "ok", *, steps: int = 2) -> None:
        self.behaviour = behaviour
        self.by_prompt: dict[str, str] = {}
        self.steps = steps
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.requests: list[InferenceRequest] = []
        self.cancelled = 0
        self.healthy = True

    async def generate(self, request: InferenceRequest) -> AsyncIterator[InferenceEvent]:
        self.requests.append(request)
        behaviour = self.by_prompt.get(request.prompt, self.behaviour)
        if behaviour == "busy":
            raise InferenceBusy()
        try:
            yield Progress("queued", queue_position=0)
            self.entered.set()
            while self.gate is not None and not self.gate.is_set():
                await asyncio.sleep(0.005)
            for step in range(1, self.steps + 1):
                yield Progress("denoising", step=step, total_steps=self.steps)
            if behaviour == "fail":
                raise InferenceFailed("unavailable", "inference unavailable: model not ready")
            flagged = 0
            for index in range(request.num_images):
                seed = (request.seed or 7) + index
                is_flagged = behaviour == "flag" or (behaviour == "flag_first" and index == 0)
                flagged += is_flagged
                colour = hashlib.sha256(f"{request.prompt}/{seed}".encode()).digest()
                yield ImageOut(index, b"" if is_flagged else tiny_png(colour), 2, 2, seed, "fake", flagged=is_flagged)
            yield Done(request.num_images - flagged, flagged, "fake")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def health(self) -> HealthResult:
        return HealthResult(self.healthy, "fake")

    async def close(self) -> None:
        return None
