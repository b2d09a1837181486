"""Latency distributions and lag: the arithmetic of the benchmark, free of Kafka and processes.

Latencies are kept exactly (one int64 of nanoseconds per order: a few MB for
the longest run), so p50/p99/p99.9/max are exact order statistics, not bucket
estimates. ``LatencyHistogram`` adds the HDR-style view for the JSON and the
plots: log-linear buckets with a fixed relative width (1/``sub_buckets`` of
each power of two, about 1.6% by default) from 1 µs up.

>>> h = LatencyHistogram.from_ns([1_000_000] * 98 + [5_000_000, 40_000_000])
>>> s = h.summary()
>>> s["count"], s["p50_ms"], s["p99_ms"], s["max_ms"]
(100, 1.0, 5.0, 40.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["LatencyHistogram", "LagVerdict", "lag_verdict", "middle_rate", "percentile_ns"]

PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "p999_ms": 99.9}


def percentile_ns(sorted_ns: np.ndarray, q: float) -> int:
    """The q-th percentile of sorted samples by the nearest-rank rule (an observed value)."""
    if len(sorted_ns) == 0:
        raise ValueError("percentile of no samples")
    rank = max(1, math.ceil(q / 100.0 * len(sorted_ns)))
    return int(sorted_ns[min(rank, len(sorted_ns)) - 1])


@dataclass
class LatencyHistogram:
    """Exact samples plus log-linear bucket counts of a latency distribution (nanoseconds)."""

    samples_ns: np.ndarray
    sub_buckets: int = 64
    lowest_ns: int = 1_000

    @classmethod
    def from_ns(cls, values: Iterable[int] | np.ndarray, **kw) -> "LatencyHistogram":
        arr = np.sort(np.asarray(values, dtype=np.int64))
        return cls(arr, **kw)

    def __len__(self) -> int:
        return len(self.samples_ns)

    def bucket_index(self, ns: np.ndarray) -> np.ndarray:
        """Bucket of each value: ``sub_buckets`` equal slices of every power of two above lowest_ns."""
        x = np.maximum(np.asarray(ns, dtype=np.float64), self.lowest_ns) / self.lowest_ns
        octave = np.floor(np.log2(x))
        slot = np.floor((x / np.exp2(octave) - 1.0) * self.sub_buckets)
        return (octave * self.sub_buckets + np.minimum(slot, self.sub_buckets - 1)).astype(np.int64)

    def bucket_upper_ns(self, index: int) -> float:
        octave, slot = divmod(int(index), self.sub_buckets)
        return self.lowest_ns * 2.0 ** octave * (1.0 + (slot + 1) / self.sub_buckets)

    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound in ms, count)`` for every non-empty bucket, ascending."""
        if len(self) == 0:
            return []
        idx, counts = np.unique(self.bucket_index(self.samples_ns), return_counts=True)
        return [(round(self.bucket_upper_ns(i) / 1e6, 4), int(c)) for i, c in zip(idx, counts)]

    def summary(self) -> dict[str, float | int]:
        """count, min, mean, exact percentiles and max, in milliseconds."""
        n = len(self)
        if n == 0:
            return {"count": 0}
        s = self.samples_ns
        out: dict[str, float | int] = {"count": n, "min_ms": _ms(s[0]),
                                       "mean_ms": round(float(s.mean()) / 1e6, 3)}
        for key, q in PERCENTILES.items():
            out[key] = _ms(percentile_ns(s, q))
        out["max_ms"] = _ms(s[-1])
        return out


def _ms(ns: float) -> float:
    return round(float(ns) / 1e6, 3)


@dataclass(frozen=True)
class LagVerdict:
    """Backlog (orders produced but not yet decided) at mid-step and at the end of producing."""

    lag_mid: int
    lag_end: int
    tolerance: int
    sustained: bool


def lag_at(sent_ns: np.ndarray, decided_ns: np.ndarray, t_ns: int) -> int:
    """Orders sent at or before ``t_ns`` minus orders decided at or before it (both sorted)."""
    return int(np.searchsorted(sent_ns, t_ns, "right") - np.searchsorted(decided_ns, t_ns, "right"))


def lag_verdict(sent_ns: np.ndarray, decided_ns: np.ndarray, rate: float,
                tolerance_s: float = 0.2) -> LagVerdict:
    """Sustained means the backlog at the end of producing is not above the mid-step one
    by more than ``tolerance_s`` worth of offered orders (a batch in flight is not growth).

    >>> sent = np.arange(0, 10_000_000_000, 1_000_000)        # 1k/s for 10 s
    >>> lag_verdict(sent, sent + 3_000_000, 1000.0).sustained   # decided 3 ms later
    True
    >>> slow = np.arange(len(sent)) * 1_250_000 + 3_000_000   # decided at 800/s
    >>> v = lag_verdict(sent, slow, 1000.0); (v.sustained, v.lag_mid < v.lag_end)
    (False, True)
    """
    sent_ns, decided_ns = np.sort(sent_ns), np.sort(decided_ns)
    t0, t1 = int(sent_ns[0]), int(sent_ns[-1])
    mid = lag_at(sent_ns, decided_ns, (t0 + t1) // 2)
    end = lag_at(sent_ns, decided_ns, t1)
    tolerance = max(int(rate * tolerance_s), 10)
    return LagVerdict(mid, end, tolerance, end <= mid + tolerance)


def middle_rate(times_ns: np.ndarray, trim: float = 0.05) -> float:
    """Events per second between the ``trim`` and ``1 - trim`` quantiles of their times.

    Trimming drops the start-up ramp and the last straggling batch.

    >>> round(middle_rate(np.arange(0, 1_000_000_000, 100_000)))   # 10k events over 1 s
    10000
    """
    t = np.sort(np.asarray(times_ns, dtype=np.int64))
    if len(t) < 3:
        return float("nan")
    lo, hi = int(len(t) * trim), int(len(t) * (1 - trim)) - 1
    span = (t[hi] - t[lo]) / 1e9
    return (hi - lo) / span if span > 0 else float("inf")
