"""gRPC server bootstrap and client helpers shared by every service.

Server: ``await serve([(add_fn, servicer)], "127.0.0.1:0", service_names=[...])`` starts a grpc.aio server
with the standard ``grpc.health.v1`` health service and reflection, on TCP or a unix socket, optionally
with mutual TLS. Client: ``open_channel(target, tls)`` and ``call_idempotent`` which retries only
UNAVAILABLE, and only for calls the caller declares idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "GrpcServer",
    "ServingStatus",
    "TlsFiles",
    "call_idempotent",
    "open_channel",
    "serve",
]

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
ServingStatus = health_pb2.HealthCheckResponse.ServingStatus
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for TLS. On a server, setting ``ca`` requires and verifies client certificates (mTLS).

    On a client, ``ca`` verifies the server; ``cert``/``key`` are the client's own certificate.
    """

    cert: Path | None
    key: Path | None
    ca: Path | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        if self.cert is None or self.key is None:
            raise ValueError("TLS server needs both a certificate and a key")
        pair = [(self.key.read_bytes(), self.cert.read_bytes())]
        root = self.ca.read_bytes() if self.ca else None
        return grpc.ssl_server_credentials(pair, root_certificates=root, require_client_auth=root is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def _server_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]


class GrpcServer:
    """A running grpc.aio server with its health servicer."""

    def __init__(self, server: grpc.aio.Server, health_servicer: AioHealthServicer, port: int,
                 listen: str, service_names: Sequence[str]) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port
        self.listen = listen
        self.service_names = tuple(service_names)

    @property
    def target(self) -> str:
        """The address a client dials to reach this server."""
        if self.listen.startswith("unix:"):
            return self.listen
        host = self.listen.rsplit(":", 1)[0] or "127.0.0.1"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    async def set_status(self, status: int, names: Sequence[str] | None = None) -> None:
        for name in ("", *(names if names is not None else self.service_names)):
            await self.health.set(name, status)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Mark everything NOT_SERVING, then stop, letting in-flight calls finish for ``grace_s``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        if self.listen.startswith("unix:"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_unix_path(self.listen))

    async def wait(self) -> None:
        await self.server.wait_for_termination()


def _unix_path(listen: str) -> str:
    path = listen[len("unix:"):]
    return path[2:] if path.startswith("//") else path


async def serve(
    servicers: Sequence[tuple[Callable[[Any, grpc.aio.Server], None], Any]],
    listen: str,
    *,
    service_names: Sequence[str],
    tls: TlsFiles | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
) -> GrpcServer:
    """Start a grpc.aio server on ``listen`` (``host:port`` or ``unix:/path``) and mark it SERVING."""
    server = grpc.aio.server(options=_server_options(max_message_bytes), interceptors=list(interceptors))
    for add_fn, servicer in servicers:
        add_fn(servicer, server)
    health_servicer = AioHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    if listen.startswith("unix:"):
        path = _unix_path(listen)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    port = server.add_secure_port(listen, tls.server_credentials()) if tls else server.add_insecure_port(listen)
    if port == 0 and not listen.startswith("unix:"):
        raise OSError(f"could not bind gRPC server to {listen}")
    await server.start()
    if listen.startswith("unix:"):
        os.chmod(_unix_path(listen), 0o660)
    running = GrpcServer(server, health_servicer, port, listen, service_names)
    await running.set_status(ServingStatus.SERVING)
    return running


def open_channel(
    target: str,
    tls: TlsFiles | None = None,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    server_name_override: str | None = None,
) -> grpc.aio.Channel:
    """Open a grpc.aio channel to ``host:port`` or ``unix:/path``."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if server_name_override:
        options.append(("grpc.ssl_target_name_override", server_name_override))
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.channel_credentials(), options=options)


async def call_idempotent(
    method: Callable[..., Awaitable[_Resp]],
    request: _Req,
    *,
    timeout_s: float = 5.0,
    attempts: int = 3,
    backoff_s: float = 0.1,
) -> _Resp:
    """Call a unary method with a deadline, retrying UNAVAILABLE with jittered backoff.

    Only for idempotent calls (queries): a non-idempotent call must not be retried blindly.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await method(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts:
                raise
            await asyncio.sleep(backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random()))
    raise AssertionError("unreachable")
