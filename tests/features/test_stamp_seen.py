"""The accounts' last-seen stamps: the Numba loop equals its readable numpy twin."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.features.account import FREE, _stamp_seen
from tradeguard.features.primitives import NEVER_MS


def twin(seen: np.ndarray, ids: np.ndarray, ts_ms: np.ndarray) -> None:
    seen[ids[seen[ids] == FREE]] = NEVER_MS
    np.maximum.at(seen, ids, ts_ms)


stamps = st.one_of(st.just(FREE), st.just(NEVER_MS), st.integers(-2**40, 2**45))


@settings(deadline=None)  # the first call loads the compiled kernel
@given(st.lists(stamps, min_size=1, max_size=8).flatmap(lambda seen: st.tuples(
    st.just(seen),
    st.lists(st.tuples(st.integers(0, len(seen) - 1), st.integers(-2**40, 2**45)), max_size=12))))
def test_stamps_equal_the_twin_with_repeated_and_free_ids(case):
    seen, events = case
    ids = np.array([i for i, _ in events], dtype=np.int64)
    ts = np.array([t for _, t in events], dtype=np.int64)
    expected, got = np.array(seen, dtype=np.int64), np.array(seen, dtype=np.int64)
    twin(expected, ids, ts)
    _stamp_seen(got, ids, ts)
    assert got.tolist() == expected.tolist()
