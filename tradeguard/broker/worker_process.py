"""A worker in a child process, started and stopped by its own pid (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tradeguard.runtime.settings import Settings
from tradeguard.runtime.signals import die_with_parent

__all__ = ["WorkerProcess"]


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, init=False)
    _signalled: bool = field(default=False, init=False, repr=False)  # SIGTERM sent to it

    def start(self) -> "WorkerProcess":
        self._signalled = False
        env = {**os.environ, **self.env(), **self.extra_env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tradeguard.cli.main", "worker"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C is handled by us, then we stop it
                preexec_fn=die_with_parent(),  # SIGTERM from the kernel if we die first
            )
        return self

    def env(self) -> dict[str, str]:
        """The worker's settings as its environment (``Settings.to_env``: every field)."""
        return self.settings.to_env()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM, once, without waiting: workers of one group stop together (one after the
        other, each stop rebalances the rest), then ``stop`` waits for each."""
        if self.alive and not self._signalled:
            self.process.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (graceful: finish batches, commit), SIGKILL if it does not exit in time."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            self.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to commit."""
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
