"""Models that score account feature vectors: one interface, unsupervised and supervised.

Every model is an ``OrderScorer``: ``score_many(X)`` in [0, 1] (higher = more suspicious),
``learn_many(X, y=None)``, ``version`` and ``to_bytes`` / ``from_bytes`` snapshots. Features are
squashed into [0, 1] by fixed per-column transforms (``squash``) before any model sees them.
"""

from tradeguard.models.anomaly import AccountAnomaly
from tradeguard.models.base import OrderScorer, SnapshotError, check_matrix
from tradeguard.models.classifier import FraudClassifier
from tradeguard.models.squash import SQUASH_KINDS

__all__ = [
    "AccountAnomaly",
    "FraudClassifier",
    "OrderScorer",
    "SQUASH_KINDS",
    "SnapshotError",
    "check_matrix",
]
