"""A real PostgreSQL server for the ledger tests: ``initdb`` into a temporary directory, ``pg_ctl start``
on 127.0.0.1 with a free port, ``pg_ctl stop`` at the end.

The binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``, newest
first; ``tools/setup-system.sh`` installs it). ``initdb`` refuses to run as root, so as root every
server command runs as the ``postgres`` user (``runuser -u postgres --``) on a data directory chowned
to it. Each test gets its own schema (``search_path`` in the URL), so tests share one server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresServer", "find_bin_dir"]

SETUP_HINT = "install Debian's postgresql (tools/setup-system.sh does, as `make test` runs it)"


def find_bin_dir() -> Path:
    override = os.environ.get("CREATORPASS_PG_BIN")
    candidates = [Path(override)] if override else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise RuntimeError(f"PostgreSQL server binaries not found under /usr/lib/postgresql: {SETUP_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.bin = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="cp-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, timeout_s: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}{log[-2000:]}")

    def start(self) -> PostgresServer:
        if self.as_root:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(f"initdb refuses root and there is no postgres user: {SETUP_HINT}") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
                   " -c fsync=on -c synchronous_commit=on")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout_s=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, schema: str = "") -> str:
        base = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return f"{base}?options=-csearch_path%3D{schema}" if schema else base

    def new_schema(self) -> str:
        """A fresh, empty schema (one per test); returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return self.url(name)
