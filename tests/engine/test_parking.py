"""When a partition given back to the worker that held it may be taken up with no restore.

``PartitionState.parked`` keeps a revoked or lost partition's core, decided up to its
``next_offsets``; ``resumable`` takes it up only if every committed offset of the partition
is still this worker's own acknowledged commit (nobody moved it on) and none is past what
the core decided. Anything else goes through the restore, as before.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, strategies as st

from agents.state import PartitionState

TOPICS = ("t.orders", "t.auth.events", "t.market.trades")


def _state(decided: dict[str, int]) -> PartitionState:
    core = object()  # parked() and resumable() never call the core
    state = PartitionState(core)  # type: ignore[arg-type]
    state.next_offsets = dict(decided)
    state.stash("orders", [SimpleNamespace(ts=5)], [decided.get("t.orders", 0)],
                decided.get("t.orders", 0) + 1)  # held back, not decided
    return state


def test_a_partition_nobody_moved_on_is_resumed_skipping_what_it_decided():
    state = _state({"t.orders": 120, "t.auth.events": 40})
    parked = state.parked()
    assert parked.core is state.core
    assert parked.skip_below == {"t.orders": 120, "t.auth.events": 40}
    assert not parked.stashed  # what was held back is read again, from the broker
    # The broker pause: the last commit acknowledged was at 100; the pause lost the next.
    acked = {"t.orders": 100, "t.auth.events": 40}
    assert parked.resumable({"t.orders": 100, "t.auth.events": 40}, acked)
    # A topic nobody ever committed (no records yet) is still nobody's.
    assert parked.resumable({"t.orders": 100, "t.auth.events": 40, "t.market.trades": None},
                            acked)


def test_another_workers_commit_or_a_commit_past_the_core_means_a_restore():
    parked = _state({"t.orders": 120, "t.auth.events": 40}).parked()
    acked = {"t.orders": 100, "t.auth.events": 40}
    # Someone else decided and committed in between (even below what this core decided).
    assert not parked.resumable({"t.orders": 110, "t.auth.events": 40}, acked)
    # Someone committed a topic this worker never committed.
    assert not parked.resumable({"t.orders": 100, "t.auth.events": 40,
                                 "t.market.trades": 3}, acked)
    # This worker's own commit, past what the parked core decided (it cannot be: refuse).
    assert not parked.resumable({"t.orders": 130, "t.auth.events": 40},
                                {"t.orders": 130, "t.auth.events": 40})


def test_the_log_names_the_offset_that_stopped_a_resume():
    parked = _state({"t.orders": 120, "t.auth.events": 40}).parked()
    acked = {"t.orders": 100, "t.auth.events": 40}
    assert parked.not_resumable({"t.orders": 100, "t.auth.events": 40}, acked) is None
    assert parked.not_resumable({"t.orders": 110, "t.auth.events": 40}, acked) == (
        "t.orders: committed 110, this worker's acknowledged commit 100")
    assert parked.not_resumable({"t.orders": 130}, {"t.orders": 130}) == (
        "t.orders: committed 130, past what it decided (120)")


offsets = st.one_of(st.none(), st.integers(0, 50))


@given(st.dictionaries(st.sampled_from(TOPICS), st.integers(0, 50)),
       st.dictionaries(st.sampled_from(TOPICS), offsets),
       st.dictionaries(st.sampled_from(TOPICS), st.integers(0, 50)))
def test_resumable_exactly_when_every_commit_is_ours_and_within_the_core(decided, committed,
                                                                        acked):
    parked = _state(decided).parked()
    ours = all(acked.get(t) == o for t, o in committed.items())
    within = all(o is None or o <= decided.get(t, -1) for t, o in committed.items())
    assert parked.resumable(committed, acked) == (ours and within)
