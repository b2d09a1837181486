"""The merged-event kernels (one call for logins and orders, or trades and flow, in event time)
equal the per-kind kernels called run by run, bit for bit, and their plain-Python twins."""

import numpy as np
from feature_streams import account_stream, ticker_stream
from hypothesis import given, settings

from tradeguard.features import (AccountFeatures, AccountParams, AuthBatch, FlowBatch, OrderBatch,
                                 TickerFeatures, TickerParams, TradeBatch, reference)

SMALL_ACCOUNTS = AccountParams(session_slots=4, session_probe=2, bloom_bits=64)
SMALL_TICKERS = TickerParams(window_s=90.0, bucket_s=30.0, buyer_ring=3, min_trades_for_sigma=2)
EXAMPLES = settings(max_examples=300, deadline=None, database=None)


def assert_identical(fast: dict, slow: dict, exact_floats: bool) -> None:
    """Integer fields bit for bit; floats bit for bit too when both sides ran the same kernel."""
    for name, array in fast.items():
        other = slow[name]
        for field in array.dtype.names or [None]:
            a, b = (array, other) if field is None else (array[field], other[field])
            if a.dtype.kind == "f" and not exact_floats:
                np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"{name}.{field}")
            else:
                assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{name}.{field}"


def merged(batches, first_kind, second_kind):
    """Concatenate a stream of batches into one batch per kind plus the (is_second, length) runs."""
    firsts = [b for b in batches if isinstance(b, first_kind)]
    seconds = [b for b in batches if isinstance(b, second_kind)]
    runs = np.array([(isinstance(b, second_kind), len(b)) for b in batches], dtype=np.int64)

    def concat(kind, parts):
        if not parts:
            return kind.from_columns(**{f: [] for f in kind.__dataclass_fields__})
        return kind.from_columns(**{f: np.concatenate([getattr(p, f) for p in parts])
                                    for f in kind.__dataclass_fields__})
    return concat(first_kind, firsts), concat(second_kind, seconds), runs


def account_arrays(f):
    return {"accounts": f._accounts, "bloom": f._bloom, "sessions": f._sessions}


@EXAMPLES
@given(account_stream())
def test_account_events_equal_the_per_kind_kernels_and_the_twin(batches):
    auth, orders, runs = merged(batches, AuthBatch, OrderBatch)
    one_call = AccountFeatures(SMALL_ACCOUNTS, capacity=1)
    got, got_logins = one_call.process_with_logins(auth, orders, runs)

    per_run = AccountFeatures(SMALL_ACCOUNTS, capacity=1)
    rows = [(isinstance(b, OrderBatch), per_run.transform_orders(b) if isinstance(b, OrderBatch)
             else per_run.learn_auth(b)) for b in batches]
    order_rows = [r for is_order, r in rows if is_order]
    login_rows = [r for is_order, r in rows if not is_order]
    expected = np.concatenate(order_rows) if order_rows else np.empty((0, got.shape[1]))
    assert np.array_equal(got, expected, equal_nan=True)
    # each login's row (flags, failed count) is the one the per-kind kernel gives
    assert np.array_equal(got_logins, np.concatenate(login_rows) if login_rows
                          else np.empty((0, 2)))
    assert_identical(account_arrays(one_call), account_arrays(per_run), exact_floats=True)

    twin = AccountFeatures(SMALL_ACCOUNTS, capacity=1)
    twin_rows, twin_logins = reference.process_accounts_with_logins(twin, auth, orders, runs)
    np.testing.assert_allclose(got, twin_rows, rtol=1e-12)
    np.testing.assert_allclose(got_logins, twin_logins, rtol=1e-12)
    assert_identical(account_arrays(one_call), account_arrays(twin), exact_floats=False)


@EXAMPLES
@given(ticker_stream())
def test_ticker_events_equal_the_per_kind_kernels_and_the_twin(batches):
    trades, flows, runs = merged(batches, TradeBatch, FlowBatch)
    one_call = TickerFeatures(SMALL_TICKERS, capacity=1)
    got = one_call.process(trades, flows, runs)

    per_run = TickerFeatures(SMALL_TICKERS, capacity=1)
    rows = [per_run.transform_flow(b) if isinstance(b, FlowBatch) else per_run.learn_trades(b)
            for b in batches]
    rows = [r for r in rows if r is not None]
    expected = np.concatenate(rows) if rows else np.empty((0, got.shape[1]))
    assert np.array_equal(got, expected, equal_nan=True)
    assert_identical(one_call._arrays(), per_run._arrays(), exact_floats=True)

    twin = TickerFeatures(SMALL_TICKERS, capacity=1)
    np.testing.assert_allclose(got, reference.process_tickers(twin, trades, flows, runs), rtol=1e-12)
    assert_identical(one_call._arrays(), twin._arrays(), exact_floats=False)


def test_runs_that_do_not_cover_the_batches_are_refused():
    f = AccountFeatures()
    auth = AuthBatch.from_columns(account=[0], kind=[0], ts_ms=[1], session=[1], ip=[1], device=[1],
                                  asn=[1], country=[1], user_agent=[1])
    empty = OrderBatch.from_columns(**{n: [] for n in OrderBatch.__dataclass_fields__})
    try:
        f.process(auth, empty, np.array([[0, 2]]))
    except ValueError as exc:
        assert "runs cover 2 auth events" in str(exc)
    else:
        raise AssertionError("runs longer than the batch were accepted")
