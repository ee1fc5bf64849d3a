"""The S3-compatible image store against a real S3-compatible server on loopback (moto's server mode,
started as a process), alone and as the gateway's image store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from aiobotocore.session import get_session

from gateway.generations.s3_images import S3ImageStore
from tests.gateway.conftest import MakeGateway
from tests.gateway.generations.conftest import open_studio
from tests.gateway.scale.test_replicas import wait_until
from tests.support.devnet_fixture import free_ports

PNG = b"\x89PNG\r\n\x1a\n" + b"pretend image bytes"
KEYS = {"access_key_id": "testing-key", "secret_access_key": "testing-secret"}


class S3Server:
    def __init__(self) -> None:
        (self.port,) = free_ports(1, "127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": KEYS["access_key_id"],
               "AWS_SECRET_ACCESS_KEY": KEYS["secret_access_key"]}
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    return True
            except OSError:
                assert self.process.poll() is None, "moto server exited"
                return False

        wait_until(up, "the S3 server")

    async def create_bucket(self, name: str) -> None:
        async with get_session().create_client("s3", endpoint_url=self.url, region_name="us-east-1",
                                               aws_access_key_id=KEYS["access_key_id"],
                                               aws_secret_access_key=KEYS["secret_access_key"]) as client:
            await client.create_bucket(Bucket=name)

    async def keys(self, bucket: str) -> list[str]:
        async with get_session().create_client("s3", endpoint_url=self.url, region_name="us-east-1",
                                               aws_access_key_id=KEYS["access_key_id"],
                                               aws_secret_access_key=KEYS["secret_access_key"]) as client:
            listing = await client.list_objects_v2(Bucket=bucket)
            return [o["Key"] for o in listing.get("Contents", [])]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
async def store(s3_server: S3Server) -> AsyncIterator[S3ImageStore]:
    await s3_server.create_bucket("unit")
    image_store = S3ImageStore("unit", endpoint_url=s3_server.url, prefix="img/", **KEYS)
    yield image_store
    await image_store.close()


async def test_put_get_content_addressed(store: S3ImageStore, s3_server: S3Server) -> None:
    sha = await store.put(PNG)
    assert sha == hashlib.sha256(PNG).hexdigest()
    assert await store.put(PNG) == sha  # the same bytes again: the same object
    assert await store.get(sha) == PNG
    assert await s3_server.keys("unit") == [f"img/{sha}.png"]
    assert await store.get("0" * 64) is None  # absent
    assert await store.get("../../etc/passwd") is None  # not a digest: never becomes a key


async def test_the_gateway_serves_images_from_s3(make_gateway: MakeGateway, s3_server: S3Server) -> None:
    await s3_server.create_bucket("studio")
    settings = {"image_s3_bucket": "studio", "image_s3_endpoint_url": s3_server.url,
                "image_s3_access_key_id": KEYS["access_key_id"],
                "image_s3_secret_access_key": KEYS["secret_access_key"]}
    async for studio in open_studio(make_gateway, **settings):
        artist = await studio.artist(credits=1)
        created = await studio.post(artist, "a heron", width=64, height=64)
        assert created.status_code == 202, created.text
        done = await studio.wait_done(artist, created.json()["id"])
        assert done["status"] == "succeeded", done
        sha = done["images"][0]["sha256"]
        assert await s3_server.keys("studio") == [f"images/{sha}.png"]
        assert not (studio.gateway.container.settings.state_dir / "images").exists()  # nothing on local disk
        image = await studio.client.get(f"/v1/images/{sha}", headers=artist.headers)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert hashlib.sha256(image.content).hexdigest() == sha
