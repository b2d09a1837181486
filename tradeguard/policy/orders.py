"""Per-order policy: named signals -> a score in [0, 1], an action and its reasons.

Vectorised over a batch: the agent hands over the feature matrix of many
orders at once and gets back scores and the contribution of every signal, so a
decision names exactly the evidence that moved it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from streams.vocabulary import ALLOW, BLOCK, HOLD
from tradeguard.policy.config import PolicyConfig

__all__ = ["MIN_REASON_RISK", "OrderVerdicts", "score_orders", "ALLOW", "HOLD", "BLOCK"]

#: Signals that added less risk than this (log-odds) are not named: a reason an analyst reads
#: should have mattered. One floor for every path that names reasons (the live decisions'
#: ``ReasonsEncoder``, login step-ups, ``OrderVerdicts.reasons``): 0.01 is what every published
#: decision has used.
MIN_REASON_RISK = 0.01


@dataclass
class OrderVerdicts:
    """Scores and evidence for a batch of orders (row i = order i)."""

    scores: np.ndarray  # (n,) combined risk in [0, 1]
    contributions: np.ndarray  # (n, k) risk added by each signal
    values: np.ndarray  # (n, k) the raw value behind each signal
    signal_names: tuple[str, ...]

    def actions(self, cfg: PolicyConfig) -> list[str]:
        """allow / hold / block for every order, by the policy's thresholds."""
        return [BLOCK if s >= cfg.block_at else HOLD if s >= cfg.hold_at else ALLOW
                for s in self.scores.tolist()]

    def action_codes(self, cfg: PolicyConfig) -> np.ndarray:
        """Action codes (0 allow, 1 hold, 2 block; ``tradeguard.core.blocks.ACTIONS``), as int8."""
        return ((self.scores >= cfg.hold_at).astype(np.int8)
                + (self.scores >= cfg.block_at).astype(np.int8))

    def action(self, i: int, cfg: PolicyConfig) -> str:
        return self.actions(cfg)[i]

    def all_reasons(self, limit: int) -> list[list[dict[str, float | str]]]:
        """``reasons(i, limit)`` for every order, with one sort for the whole batch."""
        return self._reasons(slice(None), limit)

    def reasons(self, i: int, limit: int) -> list[dict[str, float | str]]:
        """The strongest signals of order i: ``[{"code": ..., "value": ...}, ...]``.

        Signals that added less than ``MIN_REASON_RISK`` are left out: a reason
        an analyst reads should have mattered.
        """
        return self._reasons(slice(i, i + 1), limit)[0]

    def _reasons(self, rows: slice, limit: int) -> list[list[dict[str, float | str]]]:
        contributions = self.contributions[rows]
        if contributions.shape[1] == 0:
            return [[] for _ in range(contributions.shape[0])]
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :limit]
        strong = np.take_along_axis(contributions, order, axis=1) >= MIN_REASON_RISK
        values = np.round(np.take_along_axis(self.values[rows], order, axis=1), 4).tolist()
        names = self.signal_names
        return [
            [{"code": names[j], "value": v} for j, v, keep in zip(idx, vals, ok) if keep]
            for idx, vals, ok in zip(order.tolist(), values, strong.tolist())
        ]


def score_orders(
    features: np.ndarray,
    feature_names: Sequence[str],
    cfg: PolicyConfig,
    extra: dict[str, np.ndarray] | None = None,
    verified: np.ndarray | None = None,
) -> OrderVerdicts:
    """Add up every configured signal's evidence in log-odds: ``P(fraud) = sigmoid(prior + sum c_j)``.

    ``c_j = weight_j * clip((x_j - offset_j) / scale_j, 0, 1)``, times ``1 - usual`` when the
    signal is discounted by how usual it is for the account. Evidence adds, so neither a
    stranger's login alone nor an order the customer always places alone reaches a hold:
    a takeover shows both. ``verified`` marks orders of accounts that passed a step-up
    lately: ``cfg.verified_discount`` of their session evidence is explained away.
    Signals named in the policy but absent from both the features and ``extra`` (model
    scores, signals from outside the feature kernels) are skipped, so a policy file can
    mention a model a deployment does not run.

    >>> cfg = PolicyConfig.defaults()
    >>> v = score_orders(np.array([[1.0, 1.0, 0.9], [0.0, 0.0, 0.9], [1.0, 1.0, 0.0]]),
    ...                  ("new_device", "new_asn", "liquidation_ratio"), cfg)
    >>> [round(float(s), 3) for s in v.scores]   # a stranger selling most; each alone
    [0.426, 0.005, 0.047]
    >>> v.reasons(0, 2)
    [{'code': 'new_device', 'value': 1.0}, {'code': 'liquidation_ratio', 'value': 0.9}]
    """
    n = features.shape[0]
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(f"features must be (n, {len(feature_names)}) for {list(feature_names)}, "
                         f"got shape {features.shape}")
    extra = extra or {}
    plan = _plan(cfg, feature_names, extra)
    k = len(plan.names)
    values = _gather(features, extra, plan.values, n, k)
    discount = _unit(_gather(features, extra, plan.usual, n, k))
    strength = _unit((values - plan.offsets) / plan.scales)
    contributions = strength * (1.0 - discount) * plan.weights
    if verified is not None and np.any(verified) and len(plan.session):
        rows = np.flatnonzero(verified)
        contributions[np.ix_(rows, plan.session)] *= 1.0 - cfg.verified_discount
    log_odds = cfg.prior_log_odds + contributions.sum(axis=1)
    scores = 1.0 / (1.0 + np.exp(-log_odds))
    return OrderVerdicts(scores, contributions, values, plan.names)


def _unit(x: np.ndarray) -> np.ndarray:
    """``clip(nan_to_num(x), 0, 1)`` bit for bit (-0.0 included): NaN to 0, +inf to 1, -inf to 0.

    Clipping sends the infinities where ``nan_to_num`` then clipping did and keeps a NaN,
    which is then zeroed: without ``nan_to_num``'s Python-level passes (twice per call).
    """
    out = np.clip(x, 0.0, 1.0)
    np.copyto(out, 0.0, where=np.isnan(out))
    return out


@dataclass(frozen=True)
class _Plan:
    """Where each signal of a policy reads its value and its discount, with its constants.

    A source is a feature column index or an ``extra`` name; a signal with no discount has
    None (a column of zeros). Worked out once per policy, feature list and set of extras:
    building it per call cost more than scoring a handful of orders.
    """

    names: tuple[str, ...]
    values: "_Sources"
    usual: "_Sources"
    weights: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray
    session: np.ndarray  # column indices of the session signals


_PLANS: dict[tuple, tuple[PolicyConfig, Sequence[str], _Plan]] = {}


def _plan(cfg: PolicyConfig, feature_names: Sequence[str], extra: dict) -> _Plan:
    """The signals of ``cfg`` that the features or ``extra`` carry (the others are skipped)."""
    key = (id(cfg), id(feature_names), tuple(extra))
    found = _PLANS.get(key)
    if found is not None and found[0] is cfg and found[1] is feature_names:
        return found[2]
    index = {name: j for j, name in enumerate(feature_names)}

    def source(name: str) -> int | str | None:
        return index[name] if name in index else name if name in extra else None

    names, values, usual, weights, scales, offsets, session = [], [], [], [], [], [], []
    for name, sig in cfg.signals.items():
        if source(name) is None:
            continue
        names.append(name)
        values.append(source(name))
        usual.append(source(sig.discount_by) if sig.discount_by else None)
        weights.append(sig.weight)
        scales.append(sig.scale)
        offsets.append(sig.offset)
        session.append(sig.group == "session")
    plan = _Plan(tuple(names), _Sources.of_list(values), _Sources.of_list(usual), np.asarray(weights, dtype=np.float64),
                 np.asarray(scales, dtype=np.float64), np.asarray(offsets, dtype=np.float64),
                 np.flatnonzero(session))
    if len(_PLANS) > 64:  # policies reloaded many times: forget the old ones
        _PLANS.clear()
    _PLANS[key] = (cfg, feature_names, plan)
    return plan


@dataclass(frozen=True)
class _Sources:
    """Columns ``to`` of a matrix come from feature columns ``of``; ``extras`` from ``extra``."""

    to: np.ndarray
    of: np.ndarray
    extras: tuple[tuple[int, str], ...]

    @classmethod
    def of_list(cls, sources: list[int | str | None]) -> "_Sources":
        features = [(i, s) for i, s in enumerate(sources) if isinstance(s, int)]
        return cls(np.array([i for i, _ in features], dtype=np.intp),
                   np.array([s for _, s in features], dtype=np.intp),
                   tuple((i, s) for i, s in enumerate(sources) if isinstance(s, str)))


def _gather(features: np.ndarray, extra: dict, sources: _Sources, n: int, k: int) -> np.ndarray:
    """An (n, k) float matrix gathered from ``sources`` (zeros where a column has none)."""
    out = np.zeros((n, k), dtype=np.result_type(features.dtype, np.float64))
    out[:, sources.to] = features[:, sources.of]
    for i, name in sources.extras:
        out[:, i] = np.asarray(extra[name], dtype=np.float64)
    return out
