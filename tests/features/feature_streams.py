"""Hypothesis strategies for random feature streams, shared by the property and snapshot tests."""

import numpy as np
from hypothesis import strategies as st

from tradeguard.features import AuthBatch, FlowBatch, OrderBatch, TradeBatch

# Small domains so that repeats, collisions and evictions actually happen.
HASHES = st.sampled_from([0, 1, 2, 3, 2**64 - 1])
GAPS_MS = st.sampled_from([-5_000, 0, 1_000, 20_000, 60_000, 600_000, 3_600_000, 3 * 86_400_000])


@st.composite
def _clocked_rows(draw, row, n_batches):
    """Batches of rows, each row drawn with a shared event clock that mostly moves forward."""
    t = 1_700_000_000_000
    batches = []
    for _ in range(n_batches):
        rows = []
        for _ in range(draw(st.integers(1, 6))):
            t += draw(GAPS_MS)
            rows.append(draw(row(t)))
        batches.append(rows)
    return batches


def _columns(rows):
    return {name: [r[name] for r in rows] for name in rows[0]}


def _auth_row(t):
    return st.fixed_dictionaries({
        "account": st.integers(0, 2), "kind": st.sampled_from([0, 0, 0, 1, 1, 2, 3]), "ts_ms": st.just(t),
        "session": st.integers(0, 3), "ip": HASHES, "device": HASHES, "asn": HASHES,
        "country": HASHES, "user_agent": HASHES})


def _order_row(t):
    return st.fixed_dictionaries({
        "account": st.integers(0, 2), "ticker": st.integers(0, 4), "is_buy": st.booleans(),
        "qty": st.sampled_from([0.0, 1.0, 100.0, 1e4]), "price": st.sampled_from([0.5, 1000.0, np.nan]),
        "margin": st.booleans(), "overseas": st.booleans(), "ts_ms": st.just(t),
        "session": st.integers(0, 3), "ip": HASHES, "device": HASHES, "user_agent": HASHES,
        "holdings_value": st.sampled_from([np.nan, 0.0, 5e5, 1e6]),
        "ticker_adv_value": st.sampled_from([np.nan, 0.0, 1e8])})


def _trade_row(t):
    return st.fixed_dictionaries({
        "ticker": st.integers(0, 2), "price": st.floats(90.0, 110.0),
        "qty": st.sampled_from([0.0, 100.0, 1e4]), "ts_ms": st.just(t)})


def _flow_row(t):
    return st.fixed_dictionaries({
        "ticker": st.integers(0, 2), "account": st.integers(0, 6), "is_buy": st.booleans(),
        "notional": st.sampled_from([0.0, 1e5, 3e6]), "account_risk": st.sampled_from([0.0, 0.5, 0.9]),
        "ts_ms": st.just(t)})


@st.composite
def account_stream(draw, max_batches=10):
    """A list of AuthBatch / OrderBatch, interleaved on one clock."""
    kinds = draw(st.lists(st.sampled_from([AuthBatch, OrderBatch]), min_size=1, max_size=max_batches))
    rows = draw(_clocked_rows(lambda t: st.one_of(_auth_row(t), _order_row(t)), len(kinds)))
    # One clock, one kind per batch: draw rows of both shapes, keep the batch's kind.
    out = []
    for kind, batch_rows in zip(kinds, rows):
        wanted = [r for r in batch_rows if ("kind" in r) == (kind is AuthBatch)]
        if wanted:
            out.append(kind.from_columns(**_columns(wanted)))
    return out


@st.composite
def ticker_stream(draw, max_batches=8):
    """A list of TradeBatch / FlowBatch, interleaved on one clock."""
    n_batches = draw(st.integers(1, max_batches))
    rows = draw(_clocked_rows(lambda t: st.one_of(_trade_row(t), _flow_row(t)), n_batches))
    out = []
    for batch_rows in rows:
        for kind, is_kind in ((TradeBatch, lambda r: "price" in r), (FlowBatch, lambda r: "notional" in r)):
            wanted = [r for r in batch_rows if is_kind(r)]
            if wanted:
                out.append(kind.from_columns(**_columns(wanted)))
    return out
