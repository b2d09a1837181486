"""The event-time merge held to its naive twin: sort everything, in the canonical tie order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.replay.merge import TOPIC_RANK, EventTimeMerge

TOPICS = sorted(TOPIC_RANK)


def naive(streams: dict[tuple[str, int], list[int]]) -> list[tuple[str, tuple]]:
    """Every record, sorted by (event time, topic rank, partition, offset)."""
    rows = [(ts, TOPIC_RANK[name], p, offset, name)
            for (name, p), stamps in streams.items() for offset, ts in enumerate(stamps)]
    return [(name, (name, p, offset)) for ts, _, p, offset, name in sorted(rows)]


@st.composite
def partitions_and_deliveries(draw):
    """Sources with event-time-ordered records, and an interleaving of chunked deliveries."""
    sources = draw(st.lists(st.tuples(st.sampled_from(TOPICS), st.integers(0, 3)),
                            min_size=1, max_size=6, unique=True))
    streams = {s: sorted(draw(st.lists(st.integers(0, 40), max_size=25))) for s in sources}
    steps = []
    for s, stamps in streams.items():
        cuts = sorted(draw(st.lists(st.integers(0, len(stamps)), max_size=4)))
        bounds = [0, *cuts, len(stamps)]
        steps += [(s, a, b) for a, b in zip(bounds, bounds[1:])]
    order = draw(st.permutations(range(len(steps))))
    # Keep each source's chunks in offset order: a partition is read front to back.
    per_source: dict = {}
    for i in order:
        per_source.setdefault(steps[i][0], []).append(steps[i])
    for s in per_source:
        per_source[s].sort(key=lambda step: step[1])
    flat, cursor = [], {s: 0 for s in per_source}
    for i in order:
        s = steps[i][0]
        flat.append(per_source[s][cursor[s]])
        cursor[s] += 1
    releases = draw(st.lists(st.booleans(), min_size=len(flat), max_size=len(flat)))
    return streams, flat, releases


def _run(streams, deliveries, releases):
    merge = EventTimeMerge()
    for s in streams:
        merge.expect(s)
    closed: set = set()
    out = []
    for (s, a, b), release in zip(deliveries, releases):
        name, p = s
        if b > a:
            merge.add(s, streams[s][a:b], [(name, p, a + i) for i in range(b - a)],
                      list(range(a, b)))
        if b == len(streams[s]) and s not in closed:
            merge.close(s)
            closed.add(s)
        if release:
            out += merge.release()
    for s in set(streams) - closed:
        merge.close(s)
    return out + merge.release(), merge


@settings(max_examples=300, deadline=None)
@given(partitions_and_deliveries())
def test_releases_concatenate_to_the_sorted_stream(case):
    streams, deliveries, releases = case
    out, merge = _run(streams, deliveries, releases)
    assert out == naive(streams)
    assert merge.late == 0 and merge.exhausted


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(TOPICS), st.integers(0, 2)),
                       st.lists(st.integers(0, 30), max_size=15), min_size=1, max_size=4),
       st.integers(1, 5))
def test_records_out_of_order_on_their_partition_are_released_once_and_counted(streams, chunk):
    """A partition out of event-time order: nothing lost or doubled, the stragglers counted."""
    merge = EventTimeMerge()
    out = []
    for s, stamps in streams.items():
        for a in range(0, len(stamps), chunk):
            part = stamps[a:a + chunk]
            merge.add(s, part, [(s, a + i) for i in range(len(part))],
                      list(range(a, a + len(part))))
            out += merge.release()
        merge.close(s)
        out += merge.release()
    expected = sorted((s, i) for s, stamps in streams.items() for i in range(len(stamps)))
    assert sorted(item for _, item in out) == expected


def test_a_straggler_is_counted_late():
    merge = EventTimeMerge()
    merge.add(("orders", 0), [10, 20], ["a", "b"], [0, 1])
    assert merge.release() == [("orders", "a")]  # below the frontier, 20
    merge.add(("orders", 0), [15, 30], ["c", "d"], [2, 3])  # 15: before what was released
    assert merge.late == 1
    merge.close(("orders", 0))
    assert merge.release() == [("orders", "c"), ("orders", "b"), ("orders", "d")]


def test_an_open_source_that_has_not_delivered_holds_everything_back():
    merge = EventTimeMerge()
    merge.expect(("auth.events", 0))
    merge.add(("orders", 0), [5], ["o"], [0])
    merge.close(("orders", 0))
    assert merge.release() == []  # a login at ts 1 may still come
    merge.add(("auth.events", 0), [1], ["a"], [0])
    merge.close(("auth.events", 0))
    assert merge.release() == [("auth.events", "a"), ("orders", "o")]


def test_a_closed_source_cannot_deliver():
    merge = EventTimeMerge()
    merge.close(("orders", 0))
    try:
        merge.add(("orders", 0), [1], ["o"], [0])
    except ValueError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed source delivered")
