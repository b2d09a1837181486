"""Shared fixtures: a real broker, isolated topic sets, real worker processes.

``TRADEGUARD_TEST_BROKER`` picks the broker every broker-backed test runs on:

- ``tansu`` (default): the embedded Tansu, so the README's test command needs only Python;
- ``kafka``: a single-node Apache Kafka 4.x on the JDK (tradeguard/broker/apache_kafka.py),
  jars resolved once from Maven Central;
- ``kafka://HOST:PORT``: a Kafka someone else runs (``TRADEGUARD_TEST_BROKER_PROFILE``
  names its client profile, ``kafka`` by default).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.apache_kafka import ApacheKafkaBroker
from tradeguard.broker.embedded import EmbeddedBroker, free_port
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings


@dataclass
class ExternalBroker:
    """A broker this run did not start (and does not stop)."""

    url: str
    profile: str
    process: None = None


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """One broker for the whole run, on a free port, stopped by pid at the end."""
    choice = os.environ.get("TRADEGUARD_TEST_BROKER", "tansu")
    if choice.startswith("kafka://"):
        yield ExternalBroker(choice, os.environ.get("TRADEGUARD_TEST_BROKER_PROFILE", "kafka"))
        return
    if choice not in ("tansu", "kafka"):
        raise pytest.UsageError(f"TRADEGUARD_TEST_BROKER must be tansu, kafka or kafka://HOST:PORT,"
                                f" got {choice!r}")
    log = tmp_path_factory.mktemp("broker") / f"{choice}.log"
    started = (ApacheKafkaBroker if choice == "kafka" else EmbeddedBroker)(log_path=log)
    # Commands the tests run in process (the CLI) read the profile from the environment.
    previous = os.environ.get("TRADEGUARD_BROKER_PROFILE")
    os.environ["TRADEGUARD_BROKER_PROFILE"] = started.profile
    try:
        with started as b:
            yield b
    finally:
        if previous is None:
            os.environ.pop("TRADEGUARD_BROKER_PROFILE", None)
        else:
            os.environ["TRADEGUARD_BROKER_PROFILE"] = previous


#: The group session of the tests' workers on the embedded Tansu. Tansu completes a join
#: half a session after it (a fresh group, one consumer: 5.0 s at the profile's 10 s, 3.0 s
#: at 6 s, 2.0 s at 3 s), and every worker start and every rebalance pays it. 3 s is a value
#: deployments use where the broker allows it (tradeguard/kafka/profiles.py); a test whose
#: worker is stopped for seconds on purpose keeps the profile's (``module_engine_settings``).
TANSU_SESSION_MS = 3_000


def isolated_engine_settings(broker, tmp_path: Path, session_timeout_ms: int = 0) -> Settings:
    """Settings for an isolated engine: own topic prefix and consumer group, topics created."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env(
        env={}, broker=broker.url, broker_profile=broker.profile, topic_prefix=f"t{tag}.", app_id=f"tradeguard-{tag}",
        partitions=4, web_port=free_port(), web_host="127.0.0.1", state_dir=tmp_path / "state",
        # The tests replay scripted sessions with fixed timestamps: no bound on event age.
        max_event_age_s=0, session_timeout_ms=session_timeout_ms)
    create_topics(settings)
    return settings


@pytest.fixture
def engine_settings(broker, tmp_path) -> Settings:
    """Settings for an isolated engine: own topic prefix and consumer group, topics created;
    on Tansu, 3 s group sessions (``TANSU_SESSION_MS``)."""
    return isolated_engine_settings(
        broker, tmp_path, TANSU_SESSION_MS if broker.profile == "tansu" else 0)


@pytest.fixture(scope="module")
def module_engine_settings(broker, tmp_path_factory) -> Settings:
    """As ``engine_settings``, shared by the tests of one module (one worker for several),
    with the broker profile's group session: the healthz probe test stops its worker for 3.5 s."""
    return isolated_engine_settings(broker, tmp_path_factory.mktemp("module-engine"))


@pytest.fixture
def start_worker(tmp_path):
    """Start worker processes for a test; every one is stopped by pid afterwards."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, name: str = "worker", **env: str) -> WorkerProcess:
        w = WorkerProcess(settings, Path(tmp_path) / f"{name}.log", extra_env=env).start()
        started.append(w)
        return w

    yield start
    for w in started:  # all at once: a group's workers stopped in turn rebalance each other
        w.terminate()
    for w in started:
        w.stop()


SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="session")
def short_scenario():
    """The shipped short scenario (simulator tests)."""
    from tradeguard.simulator import load_scenario

    return load_scenario(SCENARIO_DIR / "short.toml")


@pytest.fixture(scope="session")
def short_session(short_scenario):
    """The short scenario, generated once per run."""
    from tradeguard.simulator import generate

    return generate(short_scenario)


def pytest_collection_modifyitems(config, items):
    """Every test that uses a broker is marked ``broker``, so `-m broker` selects exactly the
    tests that .ci/run repeats on Apache Kafka (a test that forgets the marker is still in)."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)
