"""Measurements quoted in the model docstrings. Run: python tests/models/bench_models.py

Not a test (pytest does not collect it); the numbers depend on the machine for the timings only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from river import anomaly, compose, forest, linear_model, preprocessing, tree

sys.path[:0] = [str(Path(__file__).parents[2])]
from synthetic_accounts import COLUMNS, SQUASH, account_stream, roc_auc  # noqa: E402

from tradeguard.models import AccountAnomaly, FraudClassifier  # noqa: E402
from tradeguard.models.squash import squash_codes, squash_matrix  # noqa: E402

N, WARMUP = 30_000, 8_000  # k=16 needs 250 * 16 orders before its first score


def progressive_auc(model, X, y, *, score=None):
    """Score each vector, then learn it (River's progressive validation); AUC after warm-up."""
    score = score or model.score_one
    out = np.empty(len(X))
    for i, row in enumerate(X):
        x = dict(zip(COLUMNS, row.tolist()))
        out[i] = score(x)
        model.learn_one(x)
    return roc_auc(y[WARMUP:], out[WARMUP:])


def batched_auc(model, X, y, batch=64):
    out = np.empty(len(X))
    for i in range(0, len(X), batch):
        out[i : i + batch] = model.score_many(X[i : i + batch])
        model.learn_many(X[i : i + batch], y[i : i + batch])
    return roc_auc(y[WARMUP:], out[WARMUP:])


def compare_anomaly(seeds=(0, 1, 2)):
    rows = {}
    for seed in seeds:
        X, y = account_stream(N, seed=seed)
        Xs = squash_matrix(X, *squash_codes(COLUMNS, SQUASH))
        candidates = {
            "HST squashed": lambda: (anomaly.HalfSpaceTrees(seed=42), Xs),
            "MinMax|HST raw": lambda: (
                compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=42)), X
            ),
            "LODA squashed": lambda: (anomaly.LODA(seed=42), Xs),
            "OneClassSVM squashed": lambda: (anomaly.OneClassSVM(nu=0.2), Xs),
        }
        for name, make in candidates.items():
            model, data = make()
            rows.setdefault(name, []).append(progressive_auc(model, data, y))
        for k in (1, 4, 16):
            auc = batched_auc(AccountAnomaly(COLUMNS, SQUASH, learn_every=k), X, y)
            rows.setdefault(f"AccountAnomaly k={k}", []).append(auc)
    for name, aucs in rows.items():
        print(f"{name:24s} AUC " + " ".join(f"{a:.3f}" for a in aucs) + f"  mean {np.mean(aucs):.3f}")


def compare_classifier(seeds=(0, 1, 2)):
    def lr():
        return linear_model.LogisticRegression()

    rows = {}
    for seed in seeds:
        X, y = account_stream(N, fraud_share=0.02, seed=seed)
        Xs = squash_matrix(X, *squash_codes(COLUMNS, SQUASH))
        candidates = {
            "LR squashed": lambda: (lr(), Xs),
            "Scaler|LR squashed": lambda: (preprocessing.StandardScaler() | lr(), Xs),
            "Scaler|LR raw": lambda: (preprocessing.StandardScaler() | lr(), X),
            "HoeffdingAdaptive squashed": lambda: (tree.HoeffdingAdaptiveTreeClassifier(seed=42), Xs),
            "ARF(10) squashed": lambda: (forest.ARFClassifier(n_models=10, seed=42), Xs),
        }
        for name, make in candidates.items():
            model, data = make()
            out = np.empty(len(X))
            for i, row in enumerate(data):
                x = dict(zip(COLUMNS, row.tolist()))
                out[i] = model.predict_proba_one(x).get(True, 0.0)
                model.learn_one(x, bool(y[i]))
            rows.setdefault(name, []).append(roc_auc(y[WARMUP:], out[WARMUP:]))
        rows.setdefault("FraudClassifier", []).append(
            batched_auc(FraudClassifier(COLUMNS, SQUASH), X, y)
        )
    for name, aucs in rows.items():
        print(f"{name:28s} AUC " + " ".join(f"{a:.3f}" for a in aucs) + f"  mean {np.mean(aucs):.3f}")


def per_order_us(fn, X, batch, repeat=3):
    """Best-of-repeat µs per order for fn over X in batches of `batch`."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(0, len(X), batch):
            fn(X[i : i + batch])
        best = min(best, time.perf_counter() - t)
    return best / len(X) * 1e6


def speed():
    X, y = account_stream(20_000, seed=3)
    model = AccountAnomaly(COLUMNS, SQUASH, learn_every=1)
    model.learn_many(X[:5_000])
    model.score_many(X[:2])  # compile

    def river_scores(batch):
        Xs = model.squashed(batch)
        return [model.river.score_one(dict(zip(COLUMNS, r.tolist()))) for r in Xs]

    for batch in (1, 64, 1024):
        Xb = X[5_000 : 5_000 + (2_000 if batch == 1 else 10_240)]
        print(
            f"AccountAnomaly.score_many batch {batch:5d}: numba {per_order_us(model.score_many, Xb, batch):7.2f}"
            f" us/order, river score_one {per_order_us(river_scores, Xb, batch, 1):7.2f} us/order"
        )
    for k in (1, 4, 16):
        m = AccountAnomaly(COLUMNS, SQUASH, learn_every=k)
        t = time.perf_counter()
        for i in range(0, 20_000, 64):
            m.learn_many(X[i : i + 64])
        print(f"AccountAnomaly.learn_many k={k:2d} batch 64: {(time.perf_counter() - t) / 20_000 * 1e6:6.2f} us/order")
    clf = FraudClassifier(COLUMNS, SQUASH)
    clf.learn_many(X[:5_000], y[:5_000] | (np.arange(5_000) == 0))
    for batch in (1, 64, 1024):
        print(f"FraudClassifier.score_many batch {batch:5d}: {per_order_us(clf.score_many, X[5_000:15_240], batch):7.2f} us/order")


if __name__ == "__main__":
    for part in sys.argv[1:] or ("anomaly", "classifier", "speed"):
        {"anomaly": compare_anomaly, "classifier": compare_classifier, "speed": speed}[part]()
