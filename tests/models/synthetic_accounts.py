"""A seeded synthetic stream of account feature vectors: normal traffic, hard negatives, takeovers.

Not the simulator (that lives elsewhere); just enough structure to rank models by measurement.
Normal traffic includes the brief's hard negatives: customers on a new phone or travelling, a
legitimate sell-everything rebalance, and a news-driven rush into a small cap. Takeovers carry the
campaign's signature: fresh login from new infrastructure, liquidation, then a thin-ticker buy;
half of them only faintly (see ``_stealthy``).
"""

from __future__ import annotations

import numpy as np

COLUMNS = (
    "secs_since_login", "new_device", "new_ip", "new_asn", "new_country", "new_user_agent",
    "failed_logins_before", "session_mismatch", "order_rate_x_usual", "notional_x_usual",
    "liquidation_ratio", "first_buy_of_ticker", "thin_ticker_notional_x_adv",
    "first_overseas_trade", "sudden_margin",
)  # fmt: skip
SQUASH = {
    "secs_since_login": "seconds",
    "thin_ticker_notional_x_adv": ("ratio", 0.02),  # normal buys are ~0.2% of daily volume
    **{c: "flag" for c in ("new_device", "new_ip", "new_asn", "new_country", "new_user_agent",
                           "session_mismatch", "first_buy_of_ticker", "first_overseas_trade",
                           "sudden_margin")},
}  # fmt: skip


def _normal(rng, n):
    col = {c: np.zeros(n) for c in COLUMNS}
    col["secs_since_login"] = np.minimum(rng.lognormal(8.0, 1.5, n), 1e6)
    travelling = rng.random(n) < 0.05  # new phone / abroad: new infrastructure, usual trading
    for c, p in (("new_device", 0.6), ("new_ip", 0.9), ("new_asn", 0.7), ("new_country", 0.4),
                 ("new_user_agent", 0.6)):  # fmt: skip
        col[c] = ((travelling & (rng.random(n) < p)) | (rng.random(n) < 0.01)).astype(float)
    col["failed_logins_before"] = rng.poisson(0.1, n).astype(float)
    col["session_mismatch"] = (rng.random(n) < 0.005).astype(float)
    col["order_rate_x_usual"] = rng.lognormal(0.0, 0.5, n)
    col["notional_x_usual"] = rng.lognormal(0.0, 0.6, n)
    col["liquidation_ratio"] = rng.beta(0.3, 6.0, n)
    rebalance = rng.random(n) < 0.01  # legitimately sells everything
    col["liquidation_ratio"][rebalance] = 1.0
    col["notional_x_usual"][rebalance] *= 5.0
    col["first_buy_of_ticker"] = (rng.random(n) < 0.2).astype(float)
    col["thin_ticker_notional_x_adv"] = rng.exponential(0.002, n)
    rush = rng.random(n) < 0.02  # news-driven rush into a small cap
    col["first_buy_of_ticker"][rush] = 1.0
    col["thin_ticker_notional_x_adv"][rush] = rng.exponential(0.05, rush.sum())
    col["order_rate_x_usual"][rush] *= 3.0
    col["first_overseas_trade"] = (rng.random(n) < 0.02).astype(float)
    col["sudden_margin"] = (rng.random(n) < 0.02).astype(float)
    return np.column_stack([col[c] for c in COLUMNS])


def _takeover(rng, n):
    col = {}
    col["secs_since_login"] = rng.uniform(5, 900, n)
    for c, p in (("new_device", 0.9), ("new_ip", 0.95), ("new_asn", 0.8), ("new_country", 0.6),
                 ("new_user_agent", 0.8)):  # fmt: skip
        col[c] = (rng.random(n) < p).astype(float)
    col["failed_logins_before"] = rng.poisson(2.0, n).astype(float)
    col["session_mismatch"] = (rng.random(n) < 0.4).astype(float)
    col["order_rate_x_usual"] = rng.lognormal(2.5, 0.7, n)
    col["notional_x_usual"] = rng.lognormal(2.0, 0.7, n)
    col["liquidation_ratio"] = rng.uniform(0.7, 1.0, n)
    col["first_buy_of_ticker"] = (rng.random(n) < 0.9).astype(float)
    col["thin_ticker_notional_x_adv"] = rng.lognormal(-1.5, 1.0, n)
    col["first_overseas_trade"] = (rng.random(n) < 0.5).astype(float)
    col["sudden_margin"] = (rng.random(n) < 0.4).astype(float)
    X = np.column_stack([col[c] for c in COLUMNS])
    # Half are stealthy: a relayed session cookie (AiTM) from the victim's own kind of device,
    # a partial sell-off and a modest thin-ticker buy; these overlap the hard negatives.
    stealthy = rng.random(n) < 0.5
    X[stealthy] = _stealthy(rng, int(stealthy.sum()))
    return X


def _stealthy(rng, n):
    col = {c: np.zeros(n) for c in COLUMNS}
    col["secs_since_login"] = rng.uniform(60, 7_200, n)
    col["new_ip"] = (rng.random(n) < 0.7).astype(float)
    col["new_asn"] = (rng.random(n) < 0.3).astype(float)
    col["session_mismatch"] = (rng.random(n) < 0.5).astype(float)
    col["order_rate_x_usual"] = rng.lognormal(0.7, 0.5, n)
    col["notional_x_usual"] = rng.lognormal(0.7, 0.6, n)
    col["liquidation_ratio"] = rng.uniform(0.2, 0.8, n)
    col["first_buy_of_ticker"] = (rng.random(n) < 0.7).astype(float)
    col["thin_ticker_notional_x_adv"] = rng.lognormal(-3.5, 1.0, n)
    col["first_overseas_trade"] = (rng.random(n) < 0.2).astype(float)
    return np.column_stack([col[c] for c in COLUMNS])


def account_stream(n: int, fraud_share: float = 0.01, seed: int = 0):
    """(X, y): n vectors in COLUMNS order, y True where the vector is a takeover."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < fraud_share
    X = _normal(rng, n)
    X[y] = _takeover(rng, int(y.sum()))
    return X, y


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Exact ROC-AUC (Mann-Whitney with tied ranks averaged)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    pos = y.sum()
    neg = len(y) - pos
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))
