"""What both brokers we start share: a port on 127.0.0.1, a child process stopped by its pid.

``EmbeddedBroker`` (Tansu) and ``ApacheKafkaBroker`` (a JVM) differ in how they start and
when they are ready; claiming the port, the addresses, SIGSTOP/SIGCONT for the fault suite,
the SIGTERM-then-SIGKILL stop and the context manager are the same and live here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tradeguard.kafka.errors import BrokerError

__all__ = ["BrokerProcess", "free_port", "port_is_free"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class BrokerProcess:
    """A broker child process listening on ``host:port`` (0: a free port is picked at start)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    process_returncode: int | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def _claim_port(self, what: str) -> None:
        """Pick a free port, or refuse one in use with a message naming the fix."""
        if self.port == 0:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            raise BrokerError(f"cannot start {what}: {self.host}:{self.port} is already in use "
                              "(pick another with --listen HOST:PORT)")

    def pause(self) -> None:
        """SIGSTOP the broker (one that stops answering; the fault suite)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def _terminate(self, timeout_s: float) -> None:
        """SIGTERM by its own pid (SIGCONT first: a paused process cannot handle it), then
        SIGKILL if it lingers."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.process_returncode = proc.returncode

    def start(self) -> "BrokerProcess":  # pragma: no cover - each broker starts its own way
        raise NotImplementedError

    def stop(self, timeout_s: float = 5.0) -> None:
        self._terminate(timeout_s)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
