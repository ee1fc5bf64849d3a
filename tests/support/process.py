"""A service under test as a real subprocess: log capture, graceful stop, SIGKILL, restart.

Subclasses (DevnetProcess, IndexerProcess, ...) say how to start and when the service is ready.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Self


class ManagedProcess:
    """Lifecycle shared by every service fixture; ``start()`` is the subclass's."""

    def __init__(self, log_prefix: str) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"{log_prefix}-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> Self:
        raise NotImplementedError

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout_s``); the exit code, None if never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, like a crash: the service keeps only what it made durable."""
        if self.is_running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(15)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_text(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")
