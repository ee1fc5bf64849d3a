"""gRPC server bootstrap and client helpers shared by every service.

Server: ``await serve([(add_fn, servicer)], "127.0.0.1:0", service_names=[...])`` starts a grpc.aio server
with the standard ``grpc.health.v1`` health service and reflection, on TCP or a unix socket, optionally
with mutual TLS. A unix socket is created under a umask that gives it its final mode from the start (no
window with the umask's mode), optionally in a dedicated directory this user owns (``unix_dir_mode``);
an existing path is replaced only when it is a stale socket this user owns (never another user's file,
never a live server's socket), and on stop only the socket this server bound is removed.
Client: ``open_channel(target, tls)`` and ``call_idempotent`` which retries only
UNAVAILABLE, and only for calls the caller declares idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import socket
import stat
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
    "UnixSocketError",
    "bind_unix_socket",
    "call_idempotent",
    "open_channel",
    "prepare_socket_dir",
    "prepare_unix_socket",
    "serve",
    "unix_path",
    "unlink_if_ours",
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


class UnixSocketError(OSError):
    """A unix socket path or its directory is unsafe to use (squatted, foreign, writable by others)."""


def unix_path(listen: str) -> str:
    """The filesystem path of ``unix:PATH`` / ``unix://ABS``."""
    path = listen[len("unix:"):]
    return path[2:] if path.startswith("//") else path


def prepare_socket_dir(directory: Path, dir_mode: int | None) -> None:
    """Create ``directory`` (parents as usual); with ``dir_mode``, as a dedicated directory: owned by this
    user, not a symlink, not world-writable or sticky (a shared directory such as /tmp), then set to
    ``dir_mode`` (a setgid bit already there is kept, so sockets keep the directory's group) — else
    UnixSocketError."""
    if dir_mode is None:
        directory.mkdir(parents=True, exist_ok=True)
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=dir_mode)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnixSocketError(f"socket directory {directory} is not a directory (a symlink?)")
    if info.st_uid != os.geteuid():
        raise UnixSocketError(f"socket directory {directory} belongs to uid {info.st_uid}, not to this "
                              f"process (uid {os.geteuid()}): someone else could swap the socket")
    if info.st_mode & (stat.S_IWOTH | stat.S_ISVTX):
        raise UnixSocketError(f"socket directory {directory} is world-writable or sticky (mode "
                              f"{stat.S_IMODE(info.st_mode):o}): a shared directory, not a dedicated one")
    os.chmod(directory, dir_mode | (info.st_mode & stat.S_ISGID))  # mkdir's mode passed through the umask


def prepare_unix_socket(path: str | Path, *, dir_mode: int | None = None) -> None:
    """Make ``path`` ready to bind: its directory exists (with ``dir_mode``, owned by this user, when
    given) and nothing is in the way. A stale socket this user owns is removed; a live one (a server
    answers) or any path another user owns, or that is not a socket, is an UnixSocketError."""
    target = Path(path)
    prepare_socket_dir(target.parent, dir_mode)
    try:
        info = target.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
        raise UnixSocketError(f"refusing to replace {target}: it is not a socket this user (uid {os.geteuid()}) "
                              f"owns (owner uid {info.st_uid})")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(target))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise UnixSocketError(f"cannot tell whether {target} is in use: {exc.strerror}") from None
    else:
        raise UnixSocketError(f"another server is listening on {target}")
    finally:
        probe.close()
    os.unlink(target)


@contextlib.contextmanager
def _umask(mode: int) -> Any:
    """Files created meanwhile get at most ``mode`` (the umask is process-wide: keep this short)."""
    previous = os.umask(0o777 & ~mode)
    try:
        yield
    finally:
        os.umask(previous)


def _identity(path: str | Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def bind_unix_socket(path: str | Path, *, mode: int = 0o660, dir_mode: int | None = None,
                     backlog: int = 128) -> tuple[socket.socket, tuple[int, int]]:
    """A listening unix socket at ``path`` that had ``mode`` from the moment it existed, and its
    (device, inode) for :func:`unlink_if_ours`."""
    prepare_unix_socket(path, dir_mode=dir_mode)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _umask(mode):
            sock.bind(str(path))
        sock.listen(backlog)
        return sock, _identity(path)
    except BaseException:
        sock.close()
        raise


def unlink_if_ours(path: str | Path, identity: tuple[int, int] | None) -> None:
    """Remove ``path`` only if it is still the socket this process bound (same device and inode)."""
    if identity is None:
        return
    with contextlib.suppress(FileNotFoundError):
        if _identity(path) == identity:
            os.unlink(path)


class GrpcServer:
    """A running grpc.aio server with its health servicer."""

    def __init__(self, server: grpc.aio.Server, health_servicer: AioHealthServicer, port: int,
                 listen: str, service_names: Sequence[str], socket_identity: tuple[int, int] | None = None) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port
        self.listen = listen
        self.service_names = tuple(service_names)
        self._socket_identity = socket_identity

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
            unlink_if_ours(unix_path(self.listen), self._socket_identity)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def serve(
    servicers: Sequence[tuple[Callable[[Any, grpc.aio.Server], None], Any]],
    listen: str,
    *,
    service_names: Sequence[str],
    tls: TlsFiles | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
    unix_mode: int = 0o660,
    unix_dir_mode: int | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> GrpcServer:
    """Start a grpc.aio server on ``listen`` (``host:port`` or ``unix:/path``) and mark it SERVING.

    On a unix socket: ``unix_mode`` is the socket's mode, ``unix_dir_mode`` (optional) makes its
    directory a dedicated one, created with that mode and required to belong to this user. ``options`` are
    more gRPC channel arguments for the server (e.g. ``grpc.max_connection_age_ms``)."""
    server = grpc.aio.server(options=[*_server_options(max_message_bytes), *options],
                             interceptors=list(interceptors))
    for add_fn, servicer in servicers:
        add_fn(servicer, server)
    health_servicer = AioHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    identity = None
    if listen.startswith("unix:"):
        path = unix_path(listen)
        prepare_unix_socket(path, dir_mode=unix_dir_mode)
        with _umask(unix_mode):  # add_*_port binds: the socket has its final mode from the start
            port = server.add_secure_port(listen, tls.server_credentials()) if tls else server.add_insecure_port(listen)
        identity = _identity(path)
        await server.start()
    else:
        port = server.add_secure_port(listen, tls.server_credentials()) if tls else server.add_insecure_port(listen)
        if port == 0:
            raise OSError(f"could not bind gRPC server to {listen}")
        await server.start()
    running = GrpcServer(server, health_servicer, port, listen, service_names, identity)
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
