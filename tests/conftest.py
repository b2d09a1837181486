"""Shared fixtures: the real embedded broker, isolated topic sets, real worker processes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tradeguard.broker.admin import create_topics
from tradeguard.broker.embedded import EmbeddedBroker, free_port
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """One Tansu broker for the whole run, on a free port, stopped by pid at the end."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b


@pytest.fixture
def engine_settings(broker, tmp_path) -> Settings:
    """Settings for an isolated engine: own topic prefix and consumer group, topics created."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env(
        env={}, broker=broker.url, topic_prefix=f"t{tag}.", app_id=f"tradeguard-{tag}",
        partitions=4, web_port=free_port(), web_host="127.0.0.1", state_dir=tmp_path / "state",
        # The tests replay scripted sessions with fixed timestamps: no bound on event age.
        max_event_age_s=0)
    create_topics(settings)
    return settings


@pytest.fixture
def start_worker(tmp_path):
    """Start worker processes for a test; every one is stopped by pid afterwards."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, name: str = "worker", **env: str) -> WorkerProcess:
        w = WorkerProcess(settings, Path(tmp_path) / f"{name}.log", extra_env=env).start()
        started.append(w)
        return w

    yield start
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
