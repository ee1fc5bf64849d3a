"""Image storage behind an interface, and expiring signed image URLs.

``LocalImageStore`` is content-addressed: a PNG is stored once under
``state_dir/images/<aa>/<bb>/<sha256>.png`` (written to a temporary file, fsynced, renamed), so a
retry or a second owner of the same bytes costs nothing. Who may read an image is not the store's
business: the generations service checks ownership, or the URL's signature.

A signed URL is ``/v1/images/<sha>?exp=<unix s>&sig=<hex>`` with
``sig = HMAC-SHA256(image_url_secret, "<sha>:<exp>")``: anyone holding it may fetch the image until
``exp`` (what an ``<img src>`` needs), nobody can forge one for another image or a later time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

__all__ = ["ImageStore", "ImageUrlSigner", "LocalImageStore", "is_sha256"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


class ImageStore(Protocol):
    async def put(self, png: bytes) -> str:
        """Store ``png``; returns its sha256 hex digest (the image's name)."""
        ...

    async def get(self, sha256: str) -> bytes | None: ...


class LocalImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.png"

    def _put_sync(self, png: bytes) -> str:
        digest = hashlib.sha256(png).hexdigest()
        path = self.path_of(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(png)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return digest

    def _get_sync(self, sha256: str) -> bytes | None:
        try:
            return self.path_of(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    async def put(self, png: bytes) -> str:
        return await asyncio.to_thread(self._put_sync, png)

    async def get(self, sha256: str) -> bytes | None:
        return await asyncio.to_thread(self._get_sync, sha256)


class ImageUrlSigner:
    def __init__(self, key: bytes, *, base_url: str, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s
        self.clock = clock

    def _sig(self, sha256: str, expires: int) -> str:
        return hmac.new(self._key, f"{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, sha256: str) -> str:
        expires = int(self.clock()) + self.ttl_s
        return f"{self.base_url}/v1/images/{sha256}?exp={expires}&sig={self._sig(sha256, expires)}"

    def valid(self, sha256: str, expires: str, sig: str) -> bool:
        if not expires.isdigit() or len(expires) > 12 or int(expires) < self.clock():
            return False
        return hmac.compare_digest(self._sig(sha256, int(expires)), sig)
