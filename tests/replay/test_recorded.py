"""The replay's Kafka reader on the embedded broker: ranges, stops, skips, pauses, bad values."""

from __future__ import annotations

import uuid

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING

from streams.topics import partition_for
from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer
from tradeguard.replay.recorded import RecordedTopics, SourceReader
from tradeguard.runtime.settings import Settings

pytestmark = pytest.mark.broker

T0 = 1_744_761_600_000


@pytest.fixture(scope="module")
def topics(broker):
    """Orders of two accounts on two partitions, 300 each, one a second; one value not JSON."""
    settings = Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile, partitions=2,
                                 topic_prefix=f"rec{uuid.uuid4().hex[:8]}.")
    create_topics(settings)
    accounts = ["acct-1", "acct-2"]  # on partitions 0 and 1
    assert len({partition_for(a, 2) for a in accounts}) == 2
    gateway = GatewayProducer(settings)
    for i in range(300):
        for a in accounts:
            gateway.send("orders", {"order_id": f"{a}-{i}", "account_id": a, "ticker": "7203",
                                    "side": "buy", "qty": 100, "price": 2500.0, "margin": False,
                                    "session_id": None, "ts": T0 + i * 1000})
        if i == 150:
            gateway.send("orders", b'{"order_id": ', key="acct-1")
    gateway.flush()
    return settings, {a: partition_for(a, 2) for a in accounts}


def _starts(settings):
    found = RecordedTopics(settings)
    try:
        return {("orders", p): o for p, o in found.starts("orders", None).items()}
    finally:
        found.close()


def test_to_the_end_with_bad_values_counted_and_dead_letters_skipped(topics):
    settings, partition = topics
    skip = {("orders", partition["acct-2"], 0)}
    reader = SourceReader(settings, _starts(settings), skip=skip)
    read = reader.read_all()
    ids = [r.order_id for c in read.values() for r in c.records]
    assert len(ids) == len(set(ids)) == 599 and "acct-2-0" not in ids
    assert reader.bad == {"orders": 1}
    assert reader.bad_examples[0].startswith(f"orders[{partition['acct-1']}]@")
    assert "malformed JSON" in reader.bad_examples[0]
    assert reader.skipped == 1 and all(c.closed for c in read.values())


def test_a_partition_stops_at_the_first_record_past_the_range(topics):
    settings, _ = topics
    reader = SourceReader(settings, _starts(settings), stop_ms=T0 + 100_000)
    for chunk in reader.read_all().values():
        assert [r.ts for r in chunk.records] == [T0 + i * 1000 for i in range(100)]
        assert chunk.closed


def test_a_paused_partition_delivers_nothing_until_resumed_and_then_everything_once(topics):
    settings, partition = topics
    reader = SourceReader(settings, _starts(settings), consume_max=50)
    a, b = ("orders", partition["acct-1"]), ("orders", partition["acct-2"])
    seen: dict = {a: [], b: []}
    while_paused = 0
    for step, chunks in enumerate(reader.chunks()):
        for c in chunks:
            seen[c.source] += [r.order_id for r in c.records]
            if 2 < step <= 30 and c.source == a:
                while_paused += len(c.records)
        if step == 2:
            reader.pause(a)
        elif step == 30:
            reader.resume(a)
    assert while_paused == 0
    assert 0 < len(seen[a]) < 300 or step > 30  # it was read on both sides of the pause
    for ids in seen.values():
        assert len(ids) == len(set(ids)) == 300


def test_start_positions_by_time_are_a_lower_bound(topics):
    """Some brokers answer offsets_for_times with the start: still no record is missed."""
    settings, _ = topics
    found = RecordedTopics(settings)
    try:
        starts = found.starts("orders", T0 + 200_000)
        assert all(o == OFFSET_BEGINNING or 0 <= o <= 200 for o in starts.values())
    finally:
        found.close()


def test_values_come_back_when_asked_for(topics):
    settings, _ = topics
    read = SourceReader(settings, _starts(settings), stop_ms=T0 + 2_000,
                        keep_values=True).read_all()
    for chunk in read.values():
        assert [orjson.loads(v)["order_id"] for v in chunk.values] == \
            [r.order_id for r in chunk.records]
