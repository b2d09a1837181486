"""AccountAnomaly ranks takeovers above normal traffic, and learns the same however it is fed."""

from __future__ import annotations

import numpy as np
from synthetic_accounts import COLUMNS, SQUASH, account_stream, roc_auc

from tradeguard.models import AccountAnomaly


def test_ranks_takeovers_above_normal_accounts():
    X, y = account_stream(12_000, fraud_share=0.01, seed=11)
    model = AccountAnomaly(COLUMNS, SQUASH)  # defaults: window 250, learn_every 4
    model.learn_many(X[:6_000])  # unlabelled traffic, takeovers included
    assert roc_auc(y[6_000:], model.score_many(X[6_000:])) > 0.95


def test_scores_zero_until_first_window_is_learned():
    X, _ = account_stream(200, seed=1)
    model = AccountAnomaly(COLUMNS, SQUASH, window_size=50, learn_every=2)
    model.learn_many(X[:99])  # rows 0, 2, ..., 98 are learned: exactly one window
    assert model.n_learned == 50 and model.score_many(X).any()
    fresh = AccountAnomaly(COLUMNS, SQUASH, window_size=50, learn_every=2)
    fresh.learn_many(X[:97])  # rows 0, 2, ..., 96: one short of a window
    assert fresh.n_learned == 49 and not fresh.score_many(X).any()


def test_learning_does_not_depend_on_batching():
    X, _ = account_stream(2_000, seed=2)
    whole = AccountAnomaly(COLUMNS, SQUASH, window_size=100, learn_every=3)
    whole.learn_many(X)
    pieces = AccountAnomaly(COLUMNS, SQUASH, window_size=100, learn_every=3)
    for part in np.array_split(X, [1, 2, 7, 300, 301, 1_000]):
        pieces.learn_many(part)
    assert (whole.version, whole.n_offered) == (pieces.version, pieces.n_offered) == ("hst-v1+667", 2_000)
    assert np.array_equal(whole.score_many(X), pieces.score_many(X))


def test_score_learn_many_is_prequential_and_independent_of_batching():
    """Each row is scored by the model as it was just before it, whatever the batch cut."""
    from tradeguard.models import AccountAnomaly

    rng = np.random.default_rng(3)
    X = rng.uniform(0, 2, size=(700, 3))
    columns = ("a", "b", "c")
    one_by_one = AccountAnomaly(columns, window_size=25, learn_every=2)
    expected = [one_by_one.score_learn_many(X[i:i + 1]) for i in range(len(X))]
    scores = np.concatenate([s for s, _ in expected])
    windows = np.concatenate([w for _, w in expected])
    for cuts in ([700], [1, 99, 300, 300], [49, 1, 650]):
        model, start, got_s, got_w = AccountAnomaly(columns, window_size=25, learn_every=2), 0, [], []
        for size in cuts:
            s, w = model.score_learn_many(X[start:start + size])
            got_s.append(s)
            got_w.append(w)
            start += size
        np.testing.assert_array_equal(np.concatenate(got_s), scores)
        np.testing.assert_array_equal(np.concatenate(got_w), windows)
    assert windows[-1] == one_by_one.windows > 0 and scores[-100:].max() > 0
