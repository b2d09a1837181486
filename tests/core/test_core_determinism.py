"""Decisions are a function of the records in event-time order: not of batch boundaries, not of
speed. The shipped short scenario (a pump by five hijacked accounts, a news rush) is cut into
random batches and must give the same decisions, controls and profiles as one batch per
profile period; nothing in the core reads the wall clock."""

import itertools
import time

import numpy as np
import orjson
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


def test_actions_are_the_wire_names(stream):
    """The core's action codes reach the wire as the contract's names, by severity: the
    names ``rows()`` reads, the names ``encode_decisions`` writes, the contract's enum and
    the policy's verdicts agree code for code."""
    from streams.records import DECISION
    from streams.wire import encode_decisions
    from tradeguard.core.blocks import ALLOW, BLOCK, HOLD, DecisionBlock
    from tradeguard.policy import orders as policy_orders

    assert ACTIONS == ("allow", "hold", "block")
    assert (ACTIONS[ALLOW], ACTIONS[HOLD], ACTIONS[BLOCK]) == (
        policy_orders.ALLOW, policy_orders.HOLD, policy_orders.BLOCK)
    assert next(f for f in DECISION.fields if f.name == "action").enum == ACTIONS
    codes = np.array([BLOCK, ALLOW, HOLD, BLOCK], dtype=np.int8)
    block = DecisionBlock(order_id=["o0", "o1", "o2", "o3"], account_id=["a"] * 4,
                          ticker=["7203"] * 4, side=["buy"] * 4, action=codes,
                          score=np.array([0.9, 0.1, 0.5, 0.95]), reasons=[b"[]"] * 4,
                          model_version=["m"] * 4, policy_version="p",
                          order_ts=np.arange(4, dtype=np.int64))
    wire = [orjson.loads(v)["action"] for v in encode_decisions(block, 0)]
    assert wire == [r["action"] for r in block.rows()] == ["block", "allow", "hold", "block"]
    # and what the core decided on the short scenario is spelled the same on the wire
    _, (decisions, _, _) = stream
    assert {d["action"] for d in decisions} == set(ACTIONS)
