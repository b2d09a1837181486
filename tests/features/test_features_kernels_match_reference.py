"""Every Numba kernel equals its plain-Python twin on random streams, outputs and state alike."""

import numpy as np
from feature_streams import account_stream, ticker_stream
from hypothesis import given, settings

from tradeguard.features import (AccountFeatures, AccountParams, AuthBatch, FlowBatch, 
                                 OrderBatch, TickerFeatures, TickerParams,
                                 TradeBatch, reference)

# Tiny tables and rings so eviction and saturation paths run too.
SMALL_ACCOUNTS = AccountParams(session_slots=4, session_probe=2, bloom_bits=64)
SMALL_TICKERS = TickerParams(window_s=90.0, bucket_s=30.0, buyer_ring=3, min_trades_for_sigma=2)
EXAMPLES = settings(max_examples=150, deadline=None, database=None)  # no .hypothesis/ in the repo


def assert_same_state(fast: dict, slow: dict) -> None:
    """Integers (counts, millisecond stamps, ids, Bloom words) exactly; floats to rounding."""
    for name, array in fast.items():
        other = slow[name]
        assert (array.dtype, array.shape) == (other.dtype, other.shape), name
        for field in array.dtype.names or [None]:
            a, b = (array, other) if field is None else (array[field], other[field])
            where = f"{name}.{field}" if field else name
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, equal_nan=True,
                                           err_msg=where)
            else:
                np.testing.assert_array_equal(a, b, err_msg=where)


def account_arrays(f):
    return {"accounts": f._accounts, "bloom": f._bloom, "sessions": f._sessions}


def run_both(fast, slow, batches, steps) -> None:
    """Feed each batch to the kernel method and its twin; steps maps batch type -> (method, twin)."""
    for batch in batches:
        method, twin = steps[type(batch)]
        got, expected = getattr(fast, method)(batch), twin(slow, batch)
        if expected is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-9)


@EXAMPLES
@given(account_stream())
def test_account_kernels_match_reference(batches):
    fast, slow = AccountFeatures(SMALL_ACCOUNTS, capacity=1), AccountFeatures(SMALL_ACCOUNTS, capacity=1)
    run_both(fast, slow, batches, {AuthBatch: ("learn_auth", reference.learn_auth),
                                   OrderBatch: ("transform_orders", reference.transform_orders)})
    assert_same_state(account_arrays(fast), account_arrays(slow))


@EXAMPLES
@given(ticker_stream())
def test_ticker_kernels_match_reference(batches):
    fast, slow = TickerFeatures(SMALL_TICKERS, capacity=1), TickerFeatures(SMALL_TICKERS, capacity=1)
    run_both(fast, slow, batches, {TradeBatch: ("learn_trades", reference.learn_trades),
                                   FlowBatch: ("transform_flow", reference.transform_flow)})
    assert_same_state(fast._arrays(), slow._arrays())


