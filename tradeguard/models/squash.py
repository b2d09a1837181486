"""Fixed transforms that squash raw account features into [0, 1].

HalfSpaceTrees cuts the unit cube and the classifier's weights stay comparable only if every
feature lives on one bounded scale. A running ``MinMaxScaler`` would give that, but its limits drift
with traffic: one absurd ratio from a hijacked account would squeeze every later normal vector into
a corner and silently change what yesterday's trees meant. These transforms are fixed instead, so a
squashed value means the same thing for the life of a model and of its snapshots.

Three kinds, chosen per column by the caller (the column names belong to the feature kernels):

``flag``
    0/1 indicators (``new_device``): clipped to [0, 1], so 0 and 1 sit at the cube's two faces.
``ratio`` or ``("ratio", half)``
    non-negative ratios and counts (``notional_x_usual``, ``failed_logins_before``):
    ``x / (half + x)``, written ``1 - half / (half + x)`` so that ``inf`` maps to exactly 1; half
    is the value that lands in the middle, 1 by default ("as usual" for an ``*_x_usual`` ratio;
    10x then sits at 0.91). Give a smaller half where the signal lives at small values, e.g.
    ``("ratio", 0.02)`` for a share of a ticker's daily volume: HalfSpaceTrees only cuts between
    0.15 and 0.85 of a range, so values all squashed near 0 could never be told apart.
``seconds``
    durations of 0..1e6 s (``secs_since_login``): ``log1p(x) / log1p(1e6)``, clipped at 1, because
    what matters is seconds vs minutes vs days, not the absolute gap.

Negative inputs clip to 0 in every kind. NaN is refused earlier, by the input check in ``base``.

>>> import numpy as np
>>> codes, halves = squash_codes(
...     ("new_device", "notional_x_usual", "secs_since_login", "thin_ticker_notional_x_adv"),
...     {"new_device": "flag", "secs_since_login": "seconds",
...      "thin_ticker_notional_x_adv": ("ratio", 0.02)})
>>> squash_matrix(np.array([[1.0, 1.0, 1e6, 0.02], [0.0, np.inf, 0.0, 0.18]]), codes, halves)
array([[1. , 0.5, 1. , 0.5],
       [0. , 1. , 0. , 0.9]])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numba
import numpy as np

__all__ = ["SQUASH_KINDS", "squash_codes", "squash_matrix"]

FLAG, RATIO, SECONDS = 0, 1, 2
SQUASH_KINDS = {"flag": FLAG, "ratio": RATIO, "seconds": SECONDS}
SECONDS_CEILING = 1e6  # the feature kernels cap seconds here; longer is "long ago" anyway
_LOG_CEILING = math.log1p(SECONDS_CEILING)


def squash_codes(
    columns: Sequence[str], squash: Mapping[str, str | tuple[str, float]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kind code, ratio half-point) per column; columns not named in ``squash`` are ``ratio``."""
    squash = dict(squash or {})
    unknown = sorted(set(squash) - set(columns))
    if unknown:
        raise ValueError(f"squash names columns that are not features: {unknown}")
    specs = [squash.get(name, "ratio") for name in columns]
    specs = [(spec, 1.0) if isinstance(spec, str) else tuple(spec) for spec in specs]
    for name, (kind, half) in zip(columns, specs):
        if kind not in SQUASH_KINDS or not half > 0:
            raise ValueError(
                f"bad squash for {name!r}: {squash[name]!r}; expected one of "
                f"{sorted(SQUASH_KINDS)} or ('ratio', half) with half > 0"
            )
    codes = np.array([SQUASH_KINDS[kind] for kind, _ in specs], dtype=np.int8)
    return codes, np.array([float(half) for _, half in specs])


@numba.njit(cache=True)
def _squash_value(x, code, half):
    """One raw value to [0, 1] by its kind code (and half-point, for ratios)."""
    if x <= 0.0:
        return 0.0
    if code == FLAG:
        return min(x, 1.0)
    if code == SECONDS:
        return min(math.log1p(x) / _LOG_CEILING, 1.0)
    return 1.0 - half / (half + x)


@numba.njit(cache=True)
def squash_matrix(X, codes, halves):
    """Squash every cell of X (n, F) by its column's kind and half-point; a new (n, F) array."""
    n, f = X.shape
    out = np.empty((n, f))
    for i in range(n):
        for j in range(f):
            out[i, j] = _squash_value(X[i, j], codes[j], halves[j])
    return out
