"""The core's outputs as columns: one block of decisions, one of order flow, per call.

A block holds one list or array per field, in the order of the orders that
produced it; ``streams.wire`` encodes a block to Kafka values without ever
building a dict per record. Reasons are the one nested field: they are encoded
to JSON once per distinct reason set in a batch (``ReasonsEncoder``), since
most orders share a handful of them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np
import orjson

from streams.vocabulary import ACTIONS, SEVERITY
from tradeguard.policy.orders import MIN_REASON_RISK

__all__ = ["ACTIONS", "ALLOW", "BLOCK", "DecisionBlock", "FlowBlock", "HOLD", "ReasonsEncoder"]

#: Action codes in a DecisionBlock, ordered by severity; ACTIONS[code] is the wire name.
ALLOW, HOLD, BLOCK = (SEVERITY[a] for a in ACTIONS)


class _Block:
    """Shared helpers: length, concatenation, row selection."""

    def __len__(self) -> int:
        return len(self.order_id)  # type: ignore[attr-defined]

    @classmethod
    def empty(cls):
        return cls(**{name: make() for name, make in _empties(cls)})

    def concat(self, other):
        if not len(other):
            return self
        if not len(self):
            return other
        return type(self)(**{name: _join(getattr(self, name), getattr(other, name))
                             for name, _ in _fields(type(self))})

    def take(self, rows: list[int] | np.ndarray):
        """The rows at ``rows``, as a block of the same kind."""
        rows = list(rows)
        out = {}
        for name, _ in _fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                out[name] = value[rows]
            elif isinstance(value, list):
                out[name] = [value[i] for i in rows]
            else:
                out[name] = value
        return type(self)(**out)


@cache
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(name, annotation) of a block's fields: read once per class, not per call (hot path)."""
    return tuple((f.name, f.type) for f in fields(cls))


@cache
def _empties(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, a function making its empty value) per field: a block's empty is made per call."""
    return tuple((name, _empty(annotation)) for name, annotation in _fields(cls))


def _empty(annotation: str) -> Any:
    if "ndarray" in annotation:
        return _no_floats
    return list if "list" in annotation else str


def _no_floats() -> np.ndarray:
    return np.empty(0, dtype=np.float64)


def _join(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b]) if len(a) else b
    if isinstance(a, list):
        return a + b
    return a if a == b else b  # a per-block constant (the policy version): the later one


@dataclass
class DecisionBlock(_Block):
    """One decision per order: the ``decisions`` record's fields, as columns."""

    order_id: list[str]
    account_id: list[str]
    ticker: list[str]
    side: list[str]
    action: np.ndarray  # int8 codes, ACTIONS[code]
    score: np.ndarray  # float64, rounded to 4 places
    reasons: list[bytes]  # each a JSON array of {"code", "value"}, strongest first
    model_version: list[str]
    policy_version: str
    order_ts: np.ndarray  # int64 event time of the order

    def rows(self) -> list[dict[str, Any]]:
        """The decisions as dicts (tests, the scorecard, replay reports; never the hot path)."""
        return [{"order_id": self.order_id[i], "account_id": self.account_id[i],
                 "ticker": self.ticker[i], "side": self.side[i],
                 "action": ACTIONS[int(self.action[i])], "score": float(self.score[i]),
                 "reasons": orjson.loads(self.reasons[i]),
                 "model_version": self.model_version[i], "policy_version": self.policy_version,
                 "order_ts": int(self.order_ts[i])} for i in range(len(self))]


@dataclass
class FlowBlock(_Block):
    """One record per order for the ticker side: the ``tickers.flow`` record's fields."""

    ticker: list[str]
    account_id: list[str]
    side: list[str]
    order_id: list[str]
    notional: np.ndarray  # float64 yen
    account_risk: np.ndarray  # float64, the order's score
    ts: np.ndarray  # int64 event time of the order

    @classmethod
    def from_records(cls, records: list[Any]) -> "FlowBlock":
        """From typed ``tickers.flow`` records (``streams.wire`` structs)."""
        return cls(ticker=[r.ticker for r in records], account_id=[r.account_id for r in records],
                   side=[r.side for r in records], order_id=[r.order_id for r in records],
                   notional=np.array([r.notional for r in records], dtype=np.float64),
                   account_risk=np.array([r.account_risk for r in records], dtype=np.float64),
                   ts=np.array([r.ts for r in records], dtype=np.int64))

    def sorted_by_time(self) -> "FlowBlock":
        if len(self) < 2 or bool(np.all(self.ts[1:] >= self.ts[:-1])):
            return self
        return self.take(np.argsort(self.ts, kind="stable"))


class ReasonsEncoder:
    """The strongest signals of each order as JSON, each distinct set encoded once.

    Most orders share a handful of reason sets (no reason, ``first_buy_of_ticker``,
    the takeover signature with its flags at 1.0), so the JSON of a set is kept and
    found again by the bytes of its (signal, value) row: a dictionary lookup per
    order instead of building lists of dicts.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> v = SimpleNamespace(contributions=np.array([[0.3, 0.0, 0.2], [0.3, 0.0, 0.2]]),
    ...                     values=np.array([[1.0, 5.0, 0.93], [1.0, 5.0, 0.93]]),
    ...                     signal_names=("new_device", "new_ip", "liquidation_ratio"))
    >>> ReasonsEncoder().encode(v, limit=4)[0]
    b'[{"code":"new_device","value":1.0},{"code":"liquidation_ratio","value":0.93}]'
    """

    #: Distinct reason sets remembered; the memo starts over past this (a bounded cache).
    MEMO = 200_000

    def __init__(self) -> None:
        self._memo: dict[bytes, bytes] = {}

    def encode(self, verdicts: Any, limit: int) -> list[bytes]:
        contributions = verdicts.contributions
        n = contributions.shape[0]
        if n == 0:
            return []
        if contributions.shape[1] == 0:
            return [b"[]"] * n
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :limit]
        rows = np.arange(n)[:, None]  # take_along_axis, without its per-call Python checks
        strong = contributions[rows, order] >= MIN_REASON_RISK
        values = np.round(verdicts.values[rows, order], 4)
        # One key row per order: which signal in each slot (-1 when too weak), and its value.
        keys = np.ascontiguousarray(np.concatenate(
            [np.where(strong, order, -1).astype(np.float64), np.where(strong, values, 0.0)],
            axis=1))
        raw, width = keys.tobytes(), keys.shape[1] * 8
        memo = self._memo
        if len(memo) > self.MEMO:
            memo.clear()
        names, k = verdicts.signal_names, order.shape[1]
        out = []
        for start in range(0, n * width, width):
            key = raw[start:start + width]
            found = memo.get(key)
            if found is None:
                row = keys[start // width].tolist()
                found = memo[key] = orjson.dumps(
                    [{"code": names[int(j)], "value": v} for j, v in zip(row[:k], row[k:])
                     if j >= 0])
            out.append(found)
        return out

    @staticmethod
    def decode(reasons: bytes) -> list[dict[str, Any]]:
        return orjson.loads(reasons)

    def prepend(self, codes: list[str], reasons: bytes, limit: int) -> bytes:
        """Control reasons (``ticker_halted``, ...) first, then the score's, at most ``limit``."""
        merged = [{"code": c, "value": 1.0} for c in codes] + orjson.loads(reasons)
        return orjson.dumps(merged[:limit])
