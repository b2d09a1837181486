"""A single-node Apache Kafka 4.x in KRaft mode on the JDK, started and stopped by us.

The jars come from Maven Central through Maven, once, into a cache directory
(``TRADEGUARD_KAFKA_HOME``, default ``~/.cache/tradeguard/apache-kafka-<version>``):
the pinned version below, with the resolved set (every jar and its SHA-256)
recorded in ``resolved.txt`` beside them. A broker is a fresh, formatted data
directory, a ``server.properties`` written from the options, and one JVM; SIGTERM
stops it (Kafka's controlled shutdown), and its data directory goes with it.

Used by the tests (``TRADEGUARD_TEST_BROKER=kafka``), the benchmarks
(``--broker kafka``) and ``tradeguard broker --kafka``; production runs its own
Kafka (Strimzi in deploy/) and points ``TRADEGUARD_BROKER`` at it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tradeguard.broker.process import BrokerProcess, free_port
from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.signals import die_with_parent

__all__ = ["KAFKA_VERSION", "ApacheKafkaBroker", "kafka_home", "resolve_jars"]

#: Apache Kafka from Maven Central; log4j2 and slf4j 2 so the broker logs to its file.
KAFKA_VERSION = "4.1.1"
_ARTIFACTS = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-core", "2.25.3"),
    ("org.apache.logging.log4j", "log4j-slf4j2-impl", "2.25.3"),
    # kafka_2.13 asks for slf4j-api 1.7; the log4j binding above needs 2.x (nearest wins).
    ("org.slf4j", "slf4j-api", "2.0.17"),
)


def kafka_home() -> Path:
    """Where the resolved jars live (``TRADEGUARD_KAFKA_HOME`` overrides)."""
    home = os.environ.get("TRADEGUARD_KAFKA_HOME")
    if home:
        return Path(home)
    return Path.home() / ".cache" / "tradeguard" / f"apache-kafka-{KAFKA_VERSION}"


def _pom() -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>" for g, a, v in _ARTIFACTS)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.tradeguard</groupId>
  <artifactId>apache-kafka-broker</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def resolve_jars(home: Path | None = None, timeout_s: float = 600.0) -> Path:
    """The directory of the broker's jars, resolved by Maven on first use; later calls reuse it.

    A lock file makes concurrent first uses (parallel test sessions) wait for one
    resolution; the jars land in a temporary directory renamed into place, so a
    half-written set is never used.
    """
    home = home or kafka_home()
    libs = home / "libs"
    if (home / "resolved.txt").exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "resolved.txt").exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("Apache Kafka is resolved from Maven Central by Maven, and `mvn` is "
                              "not on PATH: install Maven (and a JDK 17+), or use the embedded "
                              "broker (the default)")
        (home / "pom.xml").write_text(_pom())
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
        cmd = [mvn, "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven did not resolve Apache Kafka {KAFKA_VERSION} within "
                              f"{timeout_s:g}s") from None
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven could not resolve Apache Kafka {KAFKA_VERSION} "
                              f"(exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
        lines = [f"{hashlib.sha256(jar.read_bytes()).hexdigest()}  {jar.name}"
                 for jar in sorted(libs.glob("*.jar"))]
        (home / "resolved.txt").write_text(
            f"# Apache Kafka {KAFKA_VERSION} as resolved by `{' '.join(cmd[1:4])} ...`\n"
            + "\n".join(lines) + "\n")
    return libs


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise BrokerError("Apache Kafka needs a JDK 17 or newer: `java` is not on PATH "
                          "(set JAVA_HOME), or use the embedded broker (the default)")
    return java


_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


@dataclass
class ApacheKafkaBroker(BrokerProcess):
    """One Apache Kafka broker (combined broker and KRaft controller) on 127.0.0.1.

    >>> with ApacheKafkaBroker() as broker:       # doctest: +SKIP
    ...     print(broker.url)                      # kafka://127.0.0.1:40123
    """

    startup_timeout_s: float = 60.0
    #: Extra ``server.properties`` lines (listeners for SASL/TLS, the authorizer, ...); they
    #: win over the defaults below.
    properties: dict[str, str] = field(default_factory=dict)
    #: Broker JVM heap; one test broker holds hundreds of small topics.
    heap: str = "1g"
    #: The client tuning the clients of this broker want (tradeguard/kafka/profiles.py).
    profile: str = field(default="kafka", init=False)
    data_dir: Path | None = field(default=None, init=False, repr=False)
    controller_port: int = field(default=0, init=False)

    def server_properties(self) -> dict[str, str]:
        """The broker's configuration: single node, fast to start, every internal topic small."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
                         f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "1",
            # One node: internal topics with one replica, few partitions (a test session
            # creates hundreds of topics; 50 offsets partitions would be most of them).
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A consumer group's first join waits this long for more members (default 3 s).
            "group.initial.rebalance.delay.ms": "0",
            # Workers ask for 3 s sessions (tradeguard/kafka/profiles.py): fast failover.
            "group.min.session.timeout.ms": "1000",
            # The same for KIP-848 groups (TRADEGUARD_GROUP_PROTOCOL=consumer), whose session
            # and heartbeat the broker sets: the classic profile's 6 s and 0.5 s
            # (tradeguard/kafka/profiles.py) instead of 45 s and 5 s.
            "group.consumer.session.timeout.ms": "6000",
            "group.consumer.min.session.timeout.ms": "1000",
            "group.consumer.heartbeat.interval.ms": "500",
            "group.consumer.min.heartbeat.interval.ms": "500",
            # Transactions left open by a paused worker are aborted within a second of their
            # timeout (default: checked every 10 s).
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
            "auto.create.topics.enable": "false",
            # Test data is small and short-lived: no background flushes or big segments.
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.check.interval.ms": "600000",
            **self.properties,
        }

    def start(self) -> "ApacheKafkaBroker":
        self._claim_port("Apache Kafka")
        self.controller_port = free_port(self.host)
        libs, java = resolve_jars(), _java()
        self.data_dir = Path(tempfile.mkdtemp(prefix="tradeguard-kafka-"))
        props = self.data_dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.server_properties().items()))
        log_file = self.log_path or (self.data_dir / "server.log")
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log=log_file, level="INFO"))
        classpath = f"{libs}/*"
        common = ["-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
                  "-cp", classpath]
        cluster_id = _cluster_id()
        # Formatting is a short-lived JVM: the C1 compiler alone starts it seconds sooner.
        fmt = subprocess.run([java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *common,
                              "kafka.tools.StorageTool", "format", "-t", cluster_id,
                              "-c", str(props), "--ignore-formatted"],
                             capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise BrokerError(f"formatting the Kafka data directory failed: "
                              f"{(fmt.stdout + fmt.stderr)[-1500:]}")
        stdout = open(self.data_dir / "stdout.log", "ab")
        try:
            self.process = subprocess.Popen(
                [java, "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                 "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", *common,
                 "kafka.Kafka", str(props)],
                stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at our terminal is ours to handle
                preexec_fn=die_with_parent(),  # the kernel stops it if we die first
            )
        finally:
            stdout.close()
        self._wait_ready(log_file)
        self._warm_coordinators()
        return self

    def _warm_coordinators(self, timeout_s: float = 60.0) -> None:
        """Create the internal topics a fresh broker creates lazily, before anyone waits on them.

        Without this, the first idempotent producer waits seconds for a producer id
        ("coordinator load in progress") while ``__transaction_state`` is created, and the
        first consumer group likewise for ``__consumer_offsets``: a fresh broker's first
        test or benchmark step would measure the broker's set-up, not the engine.
        """
        from confluent_kafka import Consumer, Producer, TopicPartition

        security = self._client_security()
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id":
                             "tradeguard-broker-warm-up", "log_level": 0, **security})
        producer.init_transactions(timeout_s)  # __transaction_state, and a producer id
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id":
                             "tradeguard-broker-warm-up", "log_level": 0, **security})
        try:
            deadline = time.monotonic() + timeout_s
            while True:  # __consumer_offsets: the group coordinator answers once it exists
                try:
                    consumer.committed([TopicPartition("__tradeguard_warm_up", 0)], timeout=5)
                    break
                except Exception:  # noqa: BLE001 - coordinator not loaded yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            consumer.close()

    def _wait_ready(self, log_file: Path) -> None:
        """Ready when the broker answers metadata with itself in it, not when the port opens."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + self.startup_timeout_s
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0,
                             **self._client_security()})
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = _tail(self.data_dir / "stdout.log") or _tail(log_file)
                self.stop()
                raise BrokerError(f"Apache Kafka exited at start-up with code "
                                  f"{self.process_returncode} (log: {log_file}): {tail}")
            try:
                meta = admin.list_topics(timeout=1.0)
                if meta.brokers:
                    return
            except Exception:  # noqa: BLE001 - not up yet; the deadline decides
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"Apache Kafka did not answer on {self.bootstrap} within "
                          f"{self.startup_timeout_s:g}s (log: {log_file})")

    def _client_security(self) -> dict[str, str]:
        """librdkafka settings a client needs for the first listener (PLAINTEXT here)."""
        return {}

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (controlled shutdown), SIGKILL if it lingers; the data directory removed."""
        self._terminate(timeout_s)
        if self.data_dir is not None:  # the log, when asked for, lives outside it
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _cluster_id(entropy=os.urandom) -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    One id in 64 would start with "-", which the storage tool's argument parser reads as an
    option ("argument --cluster-id/-t: expected one argument"): CI once lost a whole run to it.
    Kafka's own ``Uuid.randomUuid`` draws again in that case, and so do we.
    """
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(entropy(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
