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
        s = self.settings
        return {
            "TRADEGUARD_BROKER": s.broker,
            "TRADEGUARD_TOPIC_PREFIX": s.topic_prefix,
            "TRADEGUARD_PARTITIONS": str(s.partitions),
            "TRADEGUARD_APP_ID": s.app_id,
            "TRADEGUARD_WEB_PORT": str(s.web_port),
            "TRADEGUARD_WEB_HOST": s.web_host,
            "TRADEGUARD_STATE_DIR": str(s.state_dir),
            "TRADEGUARD_POLICY_FILE": s.policy_file,
            "TRADEGUARD_SHADOW_POLICY_FILE": s.shadow_policy_file,
            "TRADEGUARD_LOG_LEVEL": s.log_level,
            "TRADEGUARD_BROKER_PROFILE": s.broker_profile,
            "TRADEGUARD_FETCH_MAX_WAIT_MS": str(s.fetch_max_wait_ms),
            "TRADEGUARD_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
            "TRADEGUARD_SNAPSHOT_INTERVAL_S": str(s.snapshot_interval_s),
            "TRADEGUARD_ANOMALY_WINDOW": str(s.anomaly_window),
            "TRADEGUARD_MAX_EVENT_AGE_S": str(s.max_event_age_s),
            "TRADEGUARD_MAX_EVENT_LEAD_S": str(s.max_event_lead_s),
            "TRADEGUARD_POLL_MAX": str(s.poll_max),
            "TRADEGUARD_COMMIT_INTERVAL_S": str(s.commit_interval_s),
            "TRADEGUARD_PROCESSING_GUARANTEE": s.processing_guarantee,
            "TRADEGUARD_ALIGN_WAIT_MS": str(s.align_wait_ms),
            "TRADEGUARD_CONTROL_KEY_FILE": s.control_key_file,
            # Connection security from the settings; the password only as a file's path.
            "TRADEGUARD_SECURITY_PROTOCOL": s.security_protocol,
            "TRADEGUARD_SASL_MECHANISM": s.sasl_mechanism,
            "TRADEGUARD_SASL_USERNAME": s.sasl_username,
            "TRADEGUARD_SASL_PASSWORD_FILE": s.sasl_password_file,
            "TRADEGUARD_SSL_CAFILE": s.ssl_cafile,
            "TRADEGUARD_MAX_ORDER_QTY": str(s.max_order_qty),
            "TRADEGUARD_MAX_PRICE": str(s.max_price),
            "TRADEGUARD_MAX_ORDER_NOTIONAL": str(s.max_order_notional),
            "TRADEGUARD_MAX_TRADE_QTY": str(s.max_trade_qty),
            "TRADEGUARD_MAX_HOLDINGS_VALUE": str(s.max_holdings_value),
        }

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
