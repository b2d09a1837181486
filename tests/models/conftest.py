"""Shared model factories: every OrderScorer in tradeguard.models, ready to be exercised."""

from __future__ import annotations

import pytest
from synthetic_accounts import COLUMNS, SQUASH

from tradeguard.models import AccountAnomaly, FraudClassifier

# Small windows so the anomaly model is past its first window after a few hundred vectors.
MODEL_FACTORIES = {
    "AccountAnomaly": lambda: AccountAnomaly(COLUMNS, SQUASH, window_size=50, learn_every=3),
    "FraudClassifier": lambda: FraudClassifier(COLUMNS, SQUASH),
}


@pytest.fixture(params=sorted(MODEL_FACTORIES))
def make_model(request):
    """A factory for fresh models of one kind (the test runs once per kind)."""
    return MODEL_FACTORIES[request.param]
