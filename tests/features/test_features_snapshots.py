"""A state restored from a snapshot carries on exactly as if it had never stopped."""

import doctest
import importlib

import numpy as np
import pytest
from feature_streams import account_stream, ticker_stream
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.features import (AccountFeatures, AccountParams, AuthBatch, 
                                 TickerFeatures, TradeBatch)

EXAMPLES = settings(max_examples=25, deadline=None, database=None)


def account_step(f, batch):
    return f.learn_auth(batch) if isinstance(batch, AuthBatch) else f.transform_orders(batch)


def ticker_step(f, batch):
    return f.learn_trades(batch) if isinstance(batch, TradeBatch) else f.transform_flow(batch)


def assert_resumes_identically(make, step, batches, cut):
    uninterrupted, stopped = make(), make()
    for batch in batches[:cut]:
        step(uninterrupted, batch)
        step(stopped, batch)
    resumed = type(stopped).from_bytes(stopped.to_bytes())
    for batch in batches[cut:]:
        expected, got = step(uninterrupted, batch), step(resumed, batch)
        if expected is not None:
            np.testing.assert_array_equal(got, expected)


@EXAMPLES
@given(account_stream(), st.integers(0, 8))
def test_account_features_resume_from_a_snapshot(batches, cut):
    assert_resumes_identically(lambda: AccountFeatures(AccountParams(session_slots=8), capacity=2),
                               account_step, batches, cut)


@EXAMPLES
@given(ticker_stream(), st.integers(0, 8))
def test_ticker_features_resume_from_a_snapshot(batches, cut):
    assert_resumes_identically(lambda: TickerFeatures(capacity=1), ticker_step, batches, cut)


def test_snapshot_keeps_ids_and_params():
    f = AccountFeatures(AccountParams(liquidation_window_s=60.0))
    f.ids.get_or_add("acct-1")
    g = AccountFeatures.from_bytes(f.to_bytes())
    assert g.params == f.params and g.ids.keys() == ["acct-1"]
    t = TickerFeatures()
    t.ids.get_or_add("7203")
    assert TickerFeatures.from_bytes(t.to_bytes()).ids.get("7203") == 0


@pytest.mark.parametrize("module", ["ids", "batches", "primitives", "account", "ticker"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"tradeguard.features.{module}"))
    assert result.failed == 0 and result.attempted > 0
