"""The replay's batches decide like a live worker taking one record at a time, in event time.

A live worker fed in event-time order takes in each record as it comes: a trade is
seen by the ticker side (which publishes the profiles of a period it closes) before
any later order is decided. ``LiveBatches`` cuts the stream into large batches
instead, each with the profiles its trades publish put in the book ahead, dated as the
live worker's orders saw them; the decisions, controls and profiles must be those of
one record per batch, on the shipped short scenario (its quiet nights included).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.outcomes import canonical
from tradeguard.core import InProcessEngine, typed
from tradeguard.replay.batches import LiveBatches

PARTITIONS = 4


def _outcome(batches, partitions=PARTITIONS):
    engine = InProcessEngine(partitions=partitions)
    return canonical(engine.process(batch) for batch in batches)


def _live_outcome(batches, partitions=PARTITIONS):
    """As the replay feeds them: each batch's profiles, computed ahead, in the book first."""
    engine = InProcessEngine(partitions=partitions)

    def run(batch):
        batch.ahead(engine.shared.profiles)
        out = engine.process(batch.records)
        assert out.profiles == batch.profiles  # the engine publishes what was computed ahead
        return out

    return canonical(run(batch) for batch in batches)


@pytest.fixture(scope="module")
def stream(short_session):
    records = [(name, typed(name, r)) for name, r in short_session.records]
    one_by_one = _outcome([item] for item in records)
    return records, one_by_one


def test_large_batches_decide_like_one_record_at_a_time(stream):
    records, one_by_one = stream
    batches = list(LiveBatches(PARTITIONS)(records))
    # Far fewer than one a profile period: the core is not called every minute.
    periods = {r.ts // 60_000 for name, r in records if name == "market.trades"}
    assert len(batches) < len(periods) / 4
    assert _live_outcome(batches) == one_by_one


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
    assert _live_outcome(b for chunk in chunks for b in cut(chunk)) == one_by_one


def test_the_in_process_engine_closes_periods_the_live_worker_leaves_open(stream):
    """Why the replay does not use InProcessEngine.run: the scenario's quiet nights."""
    records, one_by_one = stream
    engine = InProcessEngine(partitions=PARTITIONS)
    decisions = sorted((d for out in engine.run(records) for d in out.decisions.rows()),
                       key=lambda d: d["order_id"])
    assert decisions != one_by_one[0]


def test_an_order_after_its_account_was_stepped_up_in_the_same_batch():
    """The stealth scenario's first day over 8 partitions, as ``tradeguard replay`` reads it
    from a production layout: an account stepped up by one order places a low-scored one in
    the same batch (and the same segment of the account side: no label or answer between),
    which is held under the step-up, as in a call of its own."""
    from tests.conftest import SCENARIO_DIR
    from tradeguard.simulator import generate, load_scenario

    session = generate(load_scenario(SCENARIO_DIR / "stealth.toml"))
    records = [(name, typed(name, r)) for name, r in session.records
               if r["ts"] <= 1_744_763_400_000]  # up to a minute past that order
    one_by_one = _outcome(([item] for item in records), partitions=8)
    assert _live_outcome(LiveBatches(8)(records), partitions=8) == one_by_one
