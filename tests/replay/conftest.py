"""The recording the replay tests read back: the short scenario, decided by a live worker."""

from __future__ import annotations

import uuid

import pytest
from replay_recording import ANOMALY_WINDOW, CANDIDATE, SCENARIO, Recording, record

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.embedded import free_port
from tradeguard.runtime.settings import Settings
from tradeguard.simulator import generate, load_scenario


@pytest.fixture(scope="module")
def recording(broker, tmp_path_factory) -> Recording:
    tag = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("replay")
    candidate = tmp / "candidate.toml"
    candidate.write_text(CANDIDATE)
    settings = Settings.from_env(
        env={}, broker=broker.url, broker_profile=broker.profile, topic_prefix=f"r{tag}.", app_id=f"tradeguard-r{tag}",
        partitions=4, web_port=free_port(), web_host="127.0.0.1", state_dir=tmp / "state",
        max_event_age_s=0, anomaly_window=ANOMALY_WINDOW, shadow_policy_file=str(candidate))
    create_topics(settings)
    return record(settings, generate(load_scenario(SCENARIO)), tmp / "worker.log")
