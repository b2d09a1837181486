"""Decisions are a function of the records in event-time order: not of batch boundaries, not of
speed. The shipped short scenario (a pump by five hijacked accounts, a news rush) is cut into
random batches and must give the same decisions, controls and profiles as one batch per
profile period; nothing in the core reads the wall clock."""

import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.outcomes import canonical
from tradeguard.core import ACTIONS, InProcessEngine, typed


def _outcome(engine, records, sizes):
    """Every output, in a canonical order (tests/core/outcomes.py)."""
    return canonical(engine.run(records, iter(sizes)))


@pytest.fixture(scope="module")
def stream(short_session):
    typed_records = [(name, typed(name, r)) for name, r in short_session.records]
    baseline = _outcome(InProcessEngine(), typed_records, itertools.repeat(100_000))
    return typed_records, baseline


def test_the_short_scenario_is_decided_with_halts_and_controls(stream):
    """Guards the property below against comparing empty outcomes."""
    _, (decisions, controls, _) = stream
    actions = {d["action"] for d in decisions}
    assert {"allow", "hold", "block"} <= actions
    assert any(c["action"] == "halt_buys" for c in controls)
    assert any(c["action"] == "step_up" for c in controls)


@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 400), min_size=1, max_size=50))
def test_any_batching_gives_the_same_outcome(stream, sizes):
    records, baseline = stream
    got = _outcome(InProcessEngine(), records, itertools.cycle(sizes))
    assert got[0] == baseline[0]
    assert got[1] == baseline[1]
    assert got[2] == baseline[2]


def test_the_core_never_reads_the_wall_clock(stream, monkeypatch):
    records, baseline = stream

    def no_clock(*_):
        raise AssertionError("the core read the wall clock")

    for name in ("time", "time_ns", "monotonic", "perf_counter"):
        monkeypatch.setattr(time, name, no_clock)
    got = _outcome(InProcessEngine(), records, itertools.repeat(512))
    assert got == baseline


def test_actions_are_the_wire_names():
    assert ACTIONS == ("allow", "hold", "block")
    assert np.int8(2) == 2
