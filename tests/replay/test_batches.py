"""The replay's batches decide like a live worker taking one record at a time, in event time.

A live worker fed in event-time order takes in each record as it comes: a trade is
seen by the ticker side (which publishes the profiles of a period it closes) before
any later order is decided. ``LiveBatches`` cuts the stream into large batches
instead, only where that order matters; the decisions, controls and profiles must be
those of one record per batch, on the shipped short scenario.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.outcomes import canonical
from tradeguard.core import InProcessEngine, typed
from tradeguard.replay.run import LiveBatches

PARTITIONS = 4


def _outcome(batches):
    engine = InProcessEngine(partitions=PARTITIONS)
    return canonical(engine.process(batch) for batch in batches)


@pytest.fixture(scope="module")
def stream(short_session):
    records = [(name, typed(name, r)) for name, r in short_session.records]
    one_by_one = _outcome([item] for item in records)
    return records, one_by_one


def test_large_batches_decide_like_one_record_at_a_time(stream):
    records, one_by_one = stream
    batches = list(LiveBatches(PARTITIONS)(records))
    assert len(batches) < len(records) / 2  # they are batches
    assert _outcome(batches) == one_by_one


@settings(max_examples=2, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_any_chunking_of_the_stream_gives_the_same(stream, sizes):
    """However the merge hands records over, cut further at random: the same outcome."""
    records, one_by_one = stream
    cut = LiveBatches(PARTITIONS, limit=97)
    chunks, i = [], 0
    for size in itertools.cycle(sizes):
        if i >= len(records):
            break
        chunks.append(records[i:i + size])
        i += size
    assert _outcome(b for chunk in chunks for b in cut(chunk)) == one_by_one


def test_the_in_process_engine_closes_periods_the_live_worker_leaves_open(stream):
    """Why the replay does not use InProcessEngine.run: the scenario's quiet nights."""
    records, one_by_one = stream
    engine = InProcessEngine(partitions=PARTITIONS)
    decisions = sorted((d for out in engine.run(records) for d in out.decisions.rows()),
                       key=lambda d: d["order_id"])
    assert decisions != one_by_one[0]
