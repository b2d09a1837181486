"""Replay: event-time order, pacing by speed, and the real round trip through the broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from sim_invariants import SCENARIOS

from tradeguard.simulator import GroundTruth, replay
from tradeguard.simulator.replay import simulate

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


class Recorder:
    """A producer that remembers what it was sent, and a fake clock it advances on sleep."""

    def __init__(self):
        self.sent, self.now, self.slept, self.flushed = [], 0.0, 0.0, False

    def send(self, name, record):
        self.sent.append((name, record, self.now))

    def flush(self, timeout_s=30.0):
        self.flushed = True

    def sleep(self, seconds):
        self.now += seconds
        self.slept += seconds


def test_as_fast_as_possible_sends_everything_in_order(short_session):
    rec = Recorder()
    progress = []
    counts = replay(short_session, rec, speed=None, on_progress=lambda i, n: progress.append(i),
                    sleep=rec.sleep, clock=lambda: rec.now)
    assert [(n, r) for n, r, _ in rec.sent] == short_session.records
    assert counts == short_session.counts() and rec.flushed and rec.slept == 0
    assert progress[-1] == len(short_session.records)


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_speed_paces_the_session_but_not_the_warmup(short_session, speed):
    rec = Recorder()
    replay(short_session, rec, speed=speed, sleep=rec.sleep, clock=lambda: rec.now)
    open_ms = short_session.open_ms
    session = [(r["ts"], at) for _, r, at in rec.sent if r["ts"] >= open_ms]
    warmup = [at for _, r, at in rec.sent if r["ts"] < open_ms]
    assert warmup and max(warmup) == 0.0  # history goes at once
    first_ts, first_at = session[0]
    for ts, at in session:  # each record leaves when its event time, scaled, has come
        assert at == pytest.approx((ts - first_ts) / 1000 / speed + first_at, abs=1e-6)
    span_s = (session[-1][0] - first_ts) / 1000
    assert rec.slept == pytest.approx(span_s / speed, rel=1e-6)


def test_bad_speed_is_refused(short_session):
    with pytest.raises(ValueError, match="speed"):
        replay(short_session, Recorder(), speed=0)


def _read_back(settings, names, expected, timeout_s=30.0):
    """Records per topic, read from the start of every partition (assigned: no group to join)."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": "sim-test-read-back",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(settings.topic(n), p, OFFSET_BEGINNING)
                     for n in names for p in range(settings.partitions)])
    name_of = {settings.topic(n): n for n in names}
    counts = dict.fromkeys(names, 0)
    deadline = time.monotonic() + timeout_s
    try:
        while sum(counts.values()) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                if not msg.error():
                    counts[name_of[msg.topic()]] += 1
    finally:
        consumer.close()
    return counts


@pytest.mark.broker
def test_simulate_produces_the_short_scenario_to_kafka(engine_settings, tmp_path):
    truth_path = tmp_path / "truth.json"
    session, counts = simulate(SCENARIOS / "short.toml", engine_settings, speed=None,
                               truth_path=truth_path)
    assert counts == session.counts()
    assert GroundTruth.read(truth_path) == session.truth
    assert _read_back(engine_settings, counts, sum(counts.values())) == counts
