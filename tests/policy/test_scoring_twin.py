"""``score_orders`` against its naive twin: the formula signal by signal, bit for bit.

The fast path works out a plan per policy, feature list and set of extras, and clips
without ``nan_to_num``; the twin reads the policy afresh on every call, one column at a
time, as the docstring states the rule. Policies and extras change between calls, so a
plan kept for the wrong policy or the wrong extras shows up as a difference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.features.account import ACCOUNT_FEATURES
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

pytestmark = pytest.mark.quick

CFG = PolicyConfig.defaults()
EXTRAS = ("anomaly", "shared_infra_accounts", "hosting_network", "fraud_probability")


def _reweighted(cfg: PolicyConfig) -> PolicyConfig:
    """Another policy: every weight doubled, the first signal dropped."""
    first = next(iter(cfg.signals))
    return dataclasses.replace(cfg, signals={
        name: dataclasses.replace(sig, weight=sig.weight * 2)
        for name, sig in cfg.signals.items() if name != first})


POLICIES = (CFG, _reweighted(CFG))


def naive_score_orders(features, feature_names, cfg, extra, verified=None):
    """Scores, contributions, values and names, one signal and one order at a time."""
    def value(name, i):
        if name in feature_names:
            return float(features[i, list(feature_names).index(name)])
        if name in extra:
            return float(extra[name][i])
        return None

    def unit(x):  # clip(nan_to_num(x), 0, 1)
        return 0.0 if np.isnan(x) else min(max(x, 0.0), 1.0)

    names = [n for n in cfg.signals if n in feature_names or n in extra]
    n = features.shape[0]
    values = np.zeros((n, len(names)))
    contributions = np.zeros((n, len(names)))
    for i in range(n):
        for j, name in enumerate(names):
            sig = cfg.signals[name]
            x = value(name, i)
            values[i, j] = x
            usual = value(sig.discount_by, i) if sig.discount_by else None
            discount = 0.0 if usual is None else unit(usual)
            c = unit((x - sig.offset) / sig.scale) * (1.0 - discount) * sig.weight
            if verified is not None and verified[i] and sig.group == "session":
                c *= 1.0 - cfg.verified_discount
            contributions[i, j] = c
    scores = 1.0 / (1.0 + np.exp(-(cfg.prior_log_odds + contributions.sum(axis=1))))
    return scores, contributions, values, tuple(names)


SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, 0.5, -3.0, 7.0])


@st.composite
def calls(draw):
    n = draw(st.integers(1, 6))
    k = len(ACCOUNT_FEATURES)
    cells = draw(st.lists(st.one_of(SPECIAL, st.floats(-2, 5)), min_size=n * k,
                          max_size=n * k))
    extras = draw(st.lists(st.sampled_from(EXTRAS), unique=True))
    extra = {name: draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)) for name in extras}
    verified = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return (np.array(cells, dtype=np.float64).reshape(n, k), extra, verified,
            draw(st.sampled_from(POLICIES)))


@given(st.lists(calls(), min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_score_orders_is_its_naive_twin_bit_for_bit(sequence):
    for features, extra, verified, cfg in sequence:
        fast = score_orders(features, ACCOUNT_FEATURES, cfg, extra, verified)
        scores, contributions, values, names = naive_score_orders(
            features, ACCOUNT_FEATURES, cfg, extra, verified)
        assert fast.signal_names == names
        assert fast.values.tobytes() == values.tobytes()
        assert fast.contributions.tobytes() == contributions.tobytes()
        assert fast.scores.tobytes() == scores.tobytes()
