"""The test rig: one broker (Apache Kafka or the embedded Tansu), isolated topic sets, child processes, and the collector.

Everything the benchmark starts (broker, workers, peers, producers) is
registered with the ``Rig`` and stopped by its own pid when the rig closes,
also on error and on Ctrl-C. The collector is a plain confluent-kafka consumer
in this process, assigned every partition of one ``decisions`` topic; it
stamps each record with the monotonic clock as it is handed over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

from benchmarks.workload import Workload
from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer
from tradeguard.broker.apache_kafka import ApacheKafkaBroker
from tradeguard.broker.embedded import EmbeddedBroker
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings
from tradeguard.runtime.signals import die_with_parent

__all__ = ["Child", "Collector", "Rig", "rss_bytes"]

REPO = Path(__file__).resolve().parents[1]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        pass
    except Exception:  # the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class Child:
    """A child process we started and stop by its pid (SIGTERM, then SIGKILL)."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> "Child":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent())  # the kernel stops it if the rig dies first
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Collector:
    """Reads one decisions topic from the start; keeps the receive time of each order of a run."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, fetch_wait_ms: int = 5) -> None:
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-collector-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "log_level": 3,
            # Hand over fetched records at once: the collector must not add latency (on Tansu
            # every fetch waits this long; Kafka answers as soon as a record lands).
            "fetch.wait.max.ms": fetch_wait_ms, "fetch.min.bytes": 1,
        })
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in range(partitions)])
        self.runs: dict[str, np.ndarray] = {}  # run -> receive ns per seq (0: not yet)
        self.received = 0
        self.duplicates = 0
        self.actions: dict[str, int] = {}

    def expect(self, run: str, count: int) -> None:
        self.runs[run] = np.zeros(count, np.int64)

    def poll(self, timeout_s: float = 0.05) -> int:
        """Take what has arrived (waiting up to ``timeout_s`` for the first); return how many."""
        first = self._consumer.poll(timeout_s)
        if first is None:
            return 0
        batch = [first] + self._consumer.consume(100_000, 0)
        now = time.monotonic_ns()
        n = 0
        for msg in batch:
            if msg.error():
                continue
            value = orjson.loads(msg.value())
            run, _, seq = value["order_id"].rpartition("-")
            times = self.runs.get(run)
            if times is None or not seq.isdigit() or int(seq) >= len(times):
                continue
            i = int(seq)
            if times[i]:
                self.duplicates += 1
                continue
            times[i] = now
            n += 1
            action = value.get("action", "?")
            self.actions[action] = self.actions.get(action, 0) + 1
        self.received += n
        return n

    def missing(self, run: str) -> int:
        return int((self.runs[run] == 0).sum())

    def wait(self, run: str, timeout_s: float, stall_s: float = 15.0, busy=None,
             until_first: bool = False) -> bool:
        """Poll until every order of ``run`` is decided; give up after ``timeout_s`` or a stall.

        ``busy()`` (e.g. "the producer still runs") keeps the stall clock from running.
        ``until_first``: return as soon as any order of the run is decided.
        """
        deadline = time.monotonic() + timeout_s
        last_progress = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll():
                last_progress = time.monotonic()
            elif busy is not None and busy():
                last_progress = time.monotonic()
            if not self.missing(run) or (until_first and self.missing(run) < len(self.runs[run])):
                return True
            if time.monotonic() - last_progress > stall_s:
                return False
        return not self.missing(run)

    def close(self) -> None:
        self._consumer.close()


class Rig:
    """A broker and everything started against it; ``close()`` stops it all by pid."""

    def __init__(self, workdir: Path | None = None, partitions: int = 8,
                 broker: str = "tansu") -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="tradeguard-bench-"))
        self.partitions = partitions
        self.tag = uuid.uuid4().hex[:6]
        kind = {"kafka": ApacheKafkaBroker, "tansu": EmbeddedBroker}.get(broker)
        if kind is None:
            raise ValueError(f"broker must be kafka or tansu, got {broker!r}")
        self.broker = kind(log_path=self.workdir / "broker.log")
        #: ``auto`` (exactly once on Kafka), or ``at_least_once`` to measure what it costs.
        self.guarantee = "auto"
        #: The workers' consumer session (ms); None: the broker profile's. The failover after
        #: a SIGKILL is about one session (the dead member is noticed only when it ends).
        self.session_timeout_ms: int | None = None
        #: The workers' consumer group protocol: ``classic`` or ``consumer`` (KIP-848, Kafka).
        self.group_protocol = "classic"
        self._children: list[Child | WorkerProcess] = []
        self.first_decision_s: float | None = None  # of the last engine start_engine started
        self._collectors: list[Collector] = []

    def __enter__(self) -> "Rig":
        self.broker.start()
        if self.broker.profile == "kafka":
            self.warm_broker()
        return self

    def warm_broker(self, count: int = 50_000, rate: float = 5_000) -> None:
        """Traffic through a throwaway topic before anything is measured.

        A fresh Kafka broker's JVM compiles its hot paths in its first tens of seconds; on
        a slow machine its hop's p99 meanwhile is hundreds of ms (benchmarks/clients.py).
        """
        settings = self.topics("broker-warm-up")
        collector = self.collector(settings, "orders")
        collector.expect("broker-warm-up", count)
        spec = {"accounts": 500, "templates": 2_000, "seed": 1, "now_ms": int(time.time() * 1000)}
        producer = self.produce(settings, "broker-warm-up", count=count, rate=rate,
                                workload_spec=spec)
        collector.wait("broker-warm-up", 120, busy=lambda: producer.poll() is None)
        producer.process.wait(30)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for c in self._collectors:
            c.close()
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
        self.broker.stop()

    @property
    def suffix(self) -> str:
        """Topic-set suffix per guarantee: a second run of a part gets topics of its own."""
        return "" if self.guarantee == "auto" else f"-{self.guarantee.replace('_', '-')}"

    def settings(self, name: str) -> Settings:
        """Settings for an isolated engine: its own topic prefix and consumer group."""
        return Settings.from_env(
            env={}, broker=self.broker.url, broker_profile=self.broker.profile, topic_prefix=f"b{self.tag}-{name}.",
            app_id=f"bench-{self.tag}-{name}", partitions=self.partitions, web_port=0,
            log_level="warning", state_dir=self.workdir / name / "state",
            processing_guarantee=self.guarantee,
            group_protocol=self.group_protocol,
            **({"session_timeout_ms": self.session_timeout_ms} if self.session_timeout_ms else {}))

    def topics(self, name: str) -> Settings:
        settings = self.settings(name)
        create_topics(settings)
        return settings

    def load_context(self, settings: Settings, workload: Workload) -> None:
        """Logins and market trades, before any order (what the features learn from)."""
        gateway = GatewayProducer(settings)
        gateway.send_many("auth.events", workload.logins)
        gateway.send_many("market.trades", workload.trades)
        gateway.flush()

    def collector(self, settings: Settings, name: str = "decisions",
                  fetch_wait_ms: int | None = None) -> Collector:
        c = Collector(settings.bootstrap_servers, settings.topic(name), settings.partitions,
                      fetch_wait_ms=fetch_wait_ms or settings.fetch_wait_ms)
        self._collectors.append(c)
        return c

    def worker(self, settings: Settings, name: str) -> WorkerProcess:
        w = WorkerProcess(settings, self.workdir / f"{name}.log")
        self._children.append(w)
        return w.start()

    def child(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        c = Child(name, argv, self.workdir / f"{name}.log", env or {})
        self._children.append(c)
        return c.start()

    def produce(self, settings: Settings, run: str, *, count: int, rate: float,
                workload_spec: dict, first_seq: int = 0) -> Child:
        """Start the separate producer process for ``count`` orders of ``run``."""
        sent_path = self.workdir / f"{run}.sent.npy"
        spec = {"bootstrap": settings.bootstrap_servers, "topic": settings.topic("orders"),
                "linger_ms": settings.profile.linger_ms,
                "run": run, "count": count, "rate": rate, "first_seq": first_seq,
                "sent_path": str(sent_path), **workload_spec}
        spec_path = self.workdir / f"{run}.spec.json"
        spec_path.write_text(json.dumps(spec))
        return self.child(f"producer-{run}", [sys.executable, "-m", "benchmarks.producer",
                                              str(spec_path)])

    def sent_ns(self, run: str) -> np.ndarray:
        return np.load(self.workdir / f"{run}.sent.npy")

    def producer_result(self, child: Child) -> dict:
        """The producer's one-line JSON report (last line of its log)."""
        for line in reversed(child.log_path.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"producer {child.name} reported nothing; its log:\n{child.log_tail()}")
