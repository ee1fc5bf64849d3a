"""A DNS server on loopback that answers A queries for names the test chooses, so one name can have several
addresses (``127.0.0.1``, ``127.0.0.2``, … — all loopback on Linux) without touching ``/etc/hosts``.

gRPC's c-ares resolver takes the server from the target's authority: ``dns://127.0.0.1:<port>/name:443``.
Answers carry a 1 s TTL; AAAA and other types get an empty NOERROR answer for a known name, NXDOMAIN for an
unknown one. UDP only (answers stay far below 512 bytes).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Mapping

__all__ = ["DnsStub", "free_port_on"]

TYPE_A = 1
FLAGS_RESPONSE = 0x8180  # QR, RD, RA
RCODE_NXDOMAIN = 3


class DnsStub:
    def __init__(self, records: Mapping[str, list[str]], host: str = "127.0.0.1") -> None:
        self.records = {name.lower().rstrip("."): list(addresses) for name, addresses in records.items()}
        self.queries: list[tuple[str, int]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.authority = f"{host}:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)
        self._thread.start()

    def set(self, name: str, addresses: list[str]) -> None:
        """Answer ``name`` with ``addresses`` from now on (a scale-up, a pod gone)."""
        self.records[name.lower().rstrip(".")] = list(addresses)

    def target(self, name: str, port: int) -> str:
        """The gRPC target resolving ``name`` through this server."""
        return f"dns://{self.authority}/{name}:{port}"

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self._sock.recvfrom(512)
            except OSError:
                return  # closed
            reply = self.answer(data)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        """The response to one query; None for a packet that is not one."""
        try:
            qid, flags = struct.unpack(">HH", query[:4])
            pos, labels = 12, []
            while query[pos]:
                length = query[pos]
                labels.append(query[pos + 1:pos + 1 + length].decode("ascii"))
                pos += 1 + length
            qtype, _qclass = struct.unpack(">HH", query[pos + 1:pos + 5])
        except (struct.error, IndexError, UnicodeDecodeError):
            return None
        question = query[12:pos + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        addresses = self.records.get(name)
        answers = addresses if addresses is not None and qtype == TYPE_A else []
        rcode = 0 if addresses is not None else RCODE_NXDOMAIN
        header = struct.pack(">HHHHHH", qid, FLAGS_RESPONSE | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        records = b"".join(struct.pack(">HHHIH", 0xC00C, TYPE_A, 1, 1, 4) + socket.inet_aton(a) for a in answers)
        return header + question + records

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


def free_port_on(hosts: list[str], attempts: int = 50) -> int:
    """One TCP port free on every one of ``hosts`` a moment ago (servers at one name share the port)."""
    for _ in range(attempts):
        probe = socket.socket()
        probe.bind((hosts[0], 0))
        port: int = probe.getsockname()[1]
        held = [probe]
        try:
            for host in hosts[1:]:
                sock = socket.socket()
                held.append(sock)
                sock.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no port free on all of {hosts}")
