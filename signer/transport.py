"""The signer's unix sockets, with the caller's uid and pid (``SO_PEERCRED``) for every request.

gRPC's Python server does not expose a connection's socket, so the kernel's word on who connected
cannot reach a handler directly. The signer therefore listens on its public sockets itself: each
accepted connection's peer credentials are read, then its bytes are relayed to the gRPC server on a
private socket, over an internal connection **bound to a path of its own** (``c<N>``). gRPC reports that
path as the call's peer, and :meth:`PeerCredRelay.peer_of` maps it back to the caller's uid, gid and pid
and to the public socket (endpoint) it came through — the main socket or the mint ceremony's.

Layout: the public sockets live in a dedicated directory (mode 0750, owned by the signer; the gateway's
user gets the group), each socket mode 0660 from the moment it exists (umask set before bind). The
gRPC socket and the connection paths live in ``.internal/`` below it (0700: only the signer's user can
reach the gRPC server directly, and a direct connection has no mapping, so it is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.grpcutil import bind_unix_socket, prepare_socket_dir, prepare_unix_socket, unlink_if_ours
from common.logging import get_logger

__all__ = ["INTERNAL_DIR", "SOCKET_DIR_MODE", "SOCKET_MODE", "Peer", "PeerCredRelay"]

SOCKET_DIR_MODE = 0o750
SOCKET_MODE = 0o660
INTERNAL_DIR = ".internal"
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_HIGH_WATER = 256 * 1024
log = get_logger("signer.transport")


@dataclass(frozen=True)
class Peer:
    endpoint: str
    pid: int
    uid: int
    gid: int

    def audit(self) -> dict[str, Any]:
        return {"transport": "unix", "uid": self.uid, "gid": self.gid, "pid": self.pid}


class _Pipe(asyncio.Protocol):
    """One direction's receiving end: writes what it reads into its partner's transport."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's transport (uvloop's do not subclass asyncio's)
        self.partner: _Pipe | None = None
        self.pending: list[bytes] = []
        self.on_lost: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.set_write_buffer_limits(high=_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        partner = self.partner
        if partner is None or partner.transport is None:
            self.pending.append(data)  # the internal connection is not up yet
            return
        partner.transport.write(data)

    def eof_received(self) -> bool:
        if self.partner is not None and self.partner.transport is not None and self.partner.transport.can_write_eof():
            self.partner.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.close()
        if self.on_lost is not None:
            self.on_lost()

    def pause_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.resume_reading()


class PeerCredRelay:
    """Public unix sockets in front of the gRPC server's private one (see the module docstring)."""

    def __init__(self, socket_dir: Path) -> None:
        self.socket_dir = socket_dir
        self.internal_dir = socket_dir / INTERNAL_DIR
        self.grpc_path = self.internal_dir / "grpc.sock"
        self._peers: dict[str, Peer] = {}
        self._servers: list[tuple[asyncio.AbstractServer, Path, tuple[int, int]]] = []
        self._counter = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def grpc_listen(self) -> str:
        return f"unix:{self.grpc_path}"

    def prepare(self) -> None:
        """Create (or check) the dedicated directories before the gRPC server binds its private socket."""
        prepare_socket_dir(self.socket_dir, SOCKET_DIR_MODE)
        prepare_unix_socket(self.grpc_path, dir_mode=0o700)
        for stale in self.internal_dir.glob("c*"):  # connection paths a killed signer left behind
            with contextlib.suppress(OSError):
                if stale.is_socket() and stale.lstat().st_uid == os.geteuid():
                    stale.unlink()

    async def listen(self, path: Path, endpoint: str, mode: int = SOCKET_MODE) -> None:
        """Accept callers on ``path`` (inside the socket directory) as ``endpoint``; ``mode`` 0600 keeps the
        directory's group (the gateway) out."""
        if path.parent.resolve() != self.socket_dir.resolve():
            raise ValueError(f"{path} must be inside the socket directory {self.socket_dir}")
        sock, identity = bind_unix_socket(path, mode=mode, dir_mode=SOCKET_DIR_MODE)
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(lambda: self._accept(endpoint), sock=sock)
        self._servers.append((server, path, identity))

    def peer_of(self, grpc_peer: str) -> Peer | None:
        """The caller behind a gRPC call's ``context.peer()``; None for a connection that bypassed the relay."""
        return self._peers.get(grpc_peer[len("unix:"):] if grpc_peer.startswith("unix:") else grpc_peer)

    def _accept(self, endpoint: str) -> _Pipe:
        outer = _Pipe()
        original = outer.connection_made

        def made(transport: asyncio.BaseTransport) -> None:
            original(transport)
            transport.pause_reading()  # type: ignore[attr-defined]
            task = asyncio.get_running_loop().create_task(self._connect(outer, endpoint))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        outer.connection_made = made  # type: ignore[method-assign]
        return outer

    async def _connect(self, outer: _Pipe, endpoint: str) -> None:
        assert outer.transport is not None
        path = str(self.internal_dir / f"c{next(self._counter)}")
        inner_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            raw = outer.transport.get_extra_info("socket")
            pid, uid, gid = _CRED.unpack(raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            inner_sock.bind(path)
            inner_sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_connect(inner_sock, str(self.grpc_path))
            self._peers[path] = Peer(endpoint, pid, uid, gid)
            inner = _Pipe()
            inner.partner, outer.partner = outer, inner

            def forget() -> None:
                self._peers.pop(path, None)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

            inner.on_lost = forget
            await loop.create_unix_connection(lambda: inner, sock=inner_sock)
            if outer.pending:
                assert inner.transport is not None
                inner.transport.write(b"".join(outer.pending))
                outer.pending.clear()
            outer.transport.resume_reading()
        except OSError as exc:
            log.warning("relay_connect_failed", detail=exc.strerror or str(exc))
            self._peers.pop(path, None)
            inner_sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            outer.transport.close()

    async def close(self) -> None:
        for server, path, identity in self._servers:
            server.close()
            unlink_if_ours(path, identity)
        for server, _, _ in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        for task in list(self._tasks):
            task.cancel()
        self._servers.clear()

