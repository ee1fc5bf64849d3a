"""``S3ImageStore``: the image store on an S3-compatible object store (AWS S3, MinIO, Ceph, R2, …), so
that every gateway replica serves every image (``GATEWAY_IMAGE_S3_BUCKET``; local disk stays the default).

Content-addressed like the local store: a PNG is the object ``<prefix><sha256>.png``, so a retry or a
second owner of the same bytes writes the same object again (S3 PUTs are atomic: a reader sees the old
object or the new one, never a part). One aiobotocore client per event loop (aiobotocore's clients
belong to the loop that opened them), opened on first use and closed by ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.generations.images import is_sha256

__all__ = ["S3ImageStore"]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 3  # botocore's retries of throttling and 5xx answers (a PUT of the same bytes is idempotent)


class S3ImageStore:
    def __init__(self, bucket: str, *, endpoint_url: str = "", region: str = "us-east-1", prefix: str = "images/",
                 access_key_id: str = "", secret_access_key: str = "") -> None:
        if not bucket:
            raise ValueError("S3ImageStore needs a bucket")
        self.bucket = bucket
        self.prefix = prefix
        self._client_kwargs: dict[str, Any] = {
            "region_name": region,
            "config": Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                             retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"}),
        }
        if endpoint_url:
            self._client_kwargs["endpoint_url"] = endpoint_url
        if access_key_id:
            self._client_kwargs["aws_access_key_id"] = access_key_id
            self._client_kwargs["aws_secret_access_key"] = secret_access_key
        self._clients: dict[asyncio.AbstractEventLoop, tuple[contextlib.AsyncExitStack, Any]] = {}

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}.png"

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None:
            return found[1]
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(get_session().create_client("s3", **self._client_kwargs))
        if loop in self._clients:  # another task of this loop opened one meanwhile
            await stack.aclose()
            return self._clients[loop][1]
        self._clients[loop] = (stack, client)
        return client

    async def put(self, png: bytes) -> str:
        sha = hashlib.sha256(png).hexdigest()
        client = await self._client()
        await client.put_object(Bucket=self.bucket, Key=self.key_of(sha), Body=png, ContentType="image/png")
        return sha

    async def get(self, sha256: str) -> bytes | None:
        if not is_sha256(sha256):
            return None
        client = await self._client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def close(self) -> None:
        current = asyncio.get_running_loop()
        for loop, (stack, _client) in list(self._clients.items()):
            if loop is current:
                del self._clients[loop]
                await stack.aclose()
