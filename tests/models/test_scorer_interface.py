"""Every model speaks OrderScorer the same way: scores, learning, versions, snapshots, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from synthetic_accounts import COLUMNS, SQUASH, account_stream

from tradeguard.models import AccountAnomaly, FraudClassifier, OrderScorer, SnapshotError
from tradeguard.models.base import MAGIC

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

X, Y = account_stream(1_200, fraud_share=0.05, seed=7)

# Small windows so the anomaly model is past its first window after a few hundred vectors.
MODEL_FACTORIES = {
    "AccountAnomaly": lambda: AccountAnomaly(COLUMNS, SQUASH, window_size=50, learn_every=3),
    "FraudClassifier": lambda: FraudClassifier(COLUMNS, SQUASH),
}


@pytest.fixture(params=sorted(MODEL_FACTORIES))
def make_model(request):
    """A factory for fresh models of one kind (the test runs once per kind)."""
    return MODEL_FACTORIES[request.param]


def test_conforms_to_order_scorer(make_model):
    model = make_model()
    assert isinstance(model, OrderScorer)
    assert model.columns == COLUMNS
    assert re.fullmatch(rf"{model.name}-v{model.revision}\+0", model.version)
    model.learn_many(X[:600], Y[:600])
    assert model.version.endswith(f"+{model.n_learned}") and model.n_learned > 0
    scores = model.score_many(X)
    assert scores.dtype == np.float64 and scores.shape == (len(X),)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert model.score_many(X[:0]).shape == (0,)


def test_scores_do_not_depend_on_batching(make_model):
    model = make_model()
    model.learn_many(X[:600], Y[:600])
    whole = model.score_many(X)
    in_ones = np.concatenate([model.score_many(X[i : i + 1]) for i in range(0, 200)])
    assert np.array_equal(whole[:200], in_ones)


def test_snapshot_round_trip_then_learning_matches_an_uninterrupted_twin(make_model):
    model, twin = make_model(), make_model()
    model.learn_many(X[:500], Y[:500])
    twin.learn_many(X[:500], Y[:500])
    restored = type(model).from_bytes(model.to_bytes())
    assert restored.version == model.version
    assert np.array_equal(restored.score_many(X), model.score_many(X))

    restored.learn_many(X[500:], Y[500:])
    twin.learn_many(X[500:], Y[500:])
    assert restored.version == twin.version
    assert np.array_equal(restored.score_many(X), twin.score_many(X))


@pytest.mark.parametrize("shape", [(3, len(COLUMNS) - 1), (len(COLUMNS),), (2, 3, len(COLUMNS))])
def test_wrong_shape_names_expected_and_got(make_model, shape):
    model = make_model()
    for verb in (model.score_many, lambda A: model.learn_many(A, np.zeros(len(A), bool))):
        with pytest.raises(ValueError, match=rf"expected a \(n, {len(COLUMNS)}\).*new_device.*got shape"):
            verb(np.zeros(shape))


def test_nan_names_the_column(make_model):
    bad = X[:4].copy()
    bad[2, COLUMNS.index("liquidation_ratio")] = np.nan
    with pytest.raises(ValueError, match=r"NaN in feature columns \['liquidation_ratio'\]"):
        make_model().score_many(bad)


def test_bad_snapshots_are_refused_clearly(make_model):
    model = make_model()
    model.learn_many(X[:300], Y[:300])
    blob = model.to_bytes()
    cls = type(model)
    flipped = bytearray(blob)
    flipped[-20] ^= 0xFF
    cases = {
        b"\x80\x04not ours": "bad magic header",
        blob[: len(MAGIC) + 2]: "truncated",
        bytes(flipped): "checksum mismatch",
        MAGIC + b"\x00\x09" + blob[len(MAGIC) + 2 :]: "format 9 is not supported",
    }
    for bad, message in cases.items():
        with pytest.raises(SnapshotError, match=message):
            cls.from_bytes(bad)


def test_snapshot_of_another_model_or_revision_is_refused(monkeypatch):

    anomaly, classifier = (make() for make in MODEL_FACTORIES.values())
    with pytest.raises(SnapshotError, match="holds FraudClassifier.*expected AccountAnomaly"):
        type(anomaly).from_bytes(classifier.to_bytes())
    blob = anomaly.to_bytes()
    monkeypatch.setattr(type(anomaly), "revision", anomaly.revision + 1)
    with pytest.raises(SnapshotError, match=r"holds hst-v1, this code reads v2"):
        type(anomaly).from_bytes(blob)


@pytest.mark.parametrize("kind", sorted(MODEL_FACTORIES))
@pytest.mark.parametrize("columns", [(), ("a", "b", "a")])
def test_columns_must_be_distinct_and_present(kind, columns):
    cls = {"AccountAnomaly": AccountAnomaly, "FraudClassifier": FraudClassifier}[kind]
    with pytest.raises(ValueError, match="columns must be distinct feature names"):
        cls(columns)


@pytest.mark.parametrize("half", [0.0, -0.5])
def test_a_ratio_squash_needs_a_positive_half_point(half):
    name = "thin_ticker_notional_x_adv"
    with pytest.raises(ValueError, match=rf"bad squash for '{name}'.*half > 0"):
        AccountAnomaly(COLUMNS, {**SQUASH, name: ("ratio", half)})


@pytest.mark.parametrize("step", [1, -1])
def test_a_snapshot_of_another_revision_is_refused(make_model, monkeypatch, step):
    """Older and newer state alike: the header's revision must be this code's."""
    model = make_model()
    model.learn_many(X[:300], Y[:300])
    cls, current = type(model), type(model).revision
    monkeypatch.setattr(cls, "revision", current + step)  # written by another revision
    blob = model.to_bytes()
    monkeypatch.setattr(cls, "revision", current)
    with pytest.raises(SnapshotError, match=rf"v{current + step}, this code reads v{current}"):
        cls.from_bytes(blob)
