"""FraudClassifier: neutral until it has seen both classes, then learns a labelled stream."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_accounts import COLUMNS, SQUASH, account_stream, roc_auc

from tradeguard.models import FraudClassifier

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def test_cold_model_returns_the_documented_prior():
    X, y = account_stream(300, fraud_share=0.0, seed=3)
    clf = FraudClassifier(COLUMNS, SQUASH, cold_score=0.3)
    assert not clf.is_warm and (clf.score_many(X) == 0.3).all()
    clf.learn_many(X, y)  # legitimate labels only: still no evidence of what fraud looks like
    assert not clf.is_warm and (clf.score_many(X) == 0.3).all()
    clf.learn_many(X[:1], [True])
    assert clf.is_warm and (clf.score_many(X) != 0.3).all()


def test_learns_a_separable_labelled_stream():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (4_000, len(COLUMNS)))
    y = X[:, COLUMNS.index("liquidation_ratio")] > 0.5  # separable by one squashed feature
    clf = FraudClassifier(COLUMNS, SQUASH)
    clf.learn_many(X[:3_000], y[:3_000])
    scores = clf.score_many(X[3_000:])
    assert roc_auc(y[3_000:], scores) > 0.99
    assert ((scores > 0.5) == y[3_000:]).mean() > 0.95


def test_learns_takeovers_from_feedback():
    X, y = account_stream(12_000, fraud_share=0.02, seed=13)
    clf = FraudClassifier(COLUMNS, SQUASH)
    clf.learn_many(X[:8_000], y[:8_000])
    assert roc_auc(y[8_000:], clf.score_many(X[8_000:])) > 0.95


def test_scores_equal_river_predict_proba_one():
    X, y = account_stream(2_000, fraud_share=0.05, seed=4)
    clf = FraudClassifier(COLUMNS, SQUASH)
    clf.learn_many(X[:1_000], y[:1_000])
    river = [
        clf.river.predict_proba_one(dict(zip(COLUMNS, row.tolist())))[True]
        for row in clf.squashed(X[1_000:])
    ]
    np.testing.assert_allclose(clf.score_many(X[1_000:]), river, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "y, message",
    [(None, "needs y"), (np.zeros(3, bool), r"expected y as 4 bools"), (np.full(4, 2), "expected y")],
)
def test_bad_labels_are_refused(y, message):
    X, _ = account_stream(4, seed=0)
    with pytest.raises(ValueError, match=message):
        FraudClassifier(COLUMNS, SQUASH).learn_many(X, y)
