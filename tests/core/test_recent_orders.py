"""RecentOrders (the feature rows a later label teaches the classifier with) behaves like the
plain reference: an insertion-ordered dict of the last orders, at least ``capacity`` kept."""

from collections import OrderedDict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.core.accounts import RecentOrders

batches = st.lists(st.lists(st.sampled_from("abc"), min_size=1, max_size=6), max_size=12)


@settings(max_examples=300, deadline=None, database=None)
@given(batches, st.integers(1, 10))
def test_recent_orders_match_an_ordered_dict(stream, capacity):
    recent, reference = RecentOrders(capacity), OrderedDict()
    n = 0
    for batch in stream:
        ids = [f"o{n + i}" for i in range(len(batch))]  # order ids are unique
        accounts = list(batch)
        rows = np.arange(n, n + len(batch), dtype=np.float64).reshape(-1, 1)
        n += len(batch)
        recent.add(ids, accounts, rows)
        for order_id, account, row in zip(ids, accounts, rows):
            reference.pop(order_id, None)
            reference[order_id] = (account, row)
        kept = recent.to_state()
        assert sum(len(b[0]) for b in kept) >= min(capacity, n)
        for order_id, (account, row) in list(reference.items())[-capacity:]:
            found = recent.get(order_id)
            assert found is not None and found[0] == account and found[1][0] == row[0]
    restored = RecentOrders.from_state(recent.to_state(), capacity)
    for order_id in reference:
        assert (recent.get(order_id) is None) == (restored.get(order_id) is None)
