"""Columnar batches: the records of one poll, one NumPy array per field.

The agent decodes records, hashes their string attributes with
`stable_hash64` and maps keys to dense ids, then builds one of these.
Every column is converted to the dtype the kernels expect and all columns
must have the same length; a bad column raises ValueError naming it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LOGIN_SUCCESS", "LOGIN_FAILURE", "SESSION_START", "OTHER", "AUTH_KINDS",
    "AuthBatch", "OrderBatch", "TradeBatch", "FlowBatch", "require",
]

# Auth event kinds, as stored in AuthBatch.kind.
LOGIN_SUCCESS, LOGIN_FAILURE, SESSION_START, OTHER = 0, 1, 2, 3
AUTH_KINDS = {"login_success": LOGIN_SUCCESS, "login_failure": LOGIN_FAILURE,
              "session_start": SESSION_START, "other": OTHER}


@functools.cache
def _columns(cls: type) -> tuple[tuple[str, np.dtype], ...]:
    """(name, dtype) of a batch's columns: read once per class (a batch is built per call)."""
    return tuple((f.name, f.metadata["dtype"]) for f in dataclasses.fields(cls))


def column(dtype) -> dataclasses.Field:
    """A batch field whose values are converted to `dtype`."""
    return field(metadata={"dtype": np.dtype(dtype)})


class _Columnar:
    """Shared checks: dtype conversion and equal lengths, with the column named."""

    def __post_init__(self) -> None:
        length = None
        for name, dtype in _columns(type(self)):
            try:
                values = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"{type(self).__name__}.{name}: cannot convert to "
                                 f"{dtype}: {exc}") from None
            if values.ndim != 1:
                raise ValueError(f"{type(self).__name__}.{name}: expected a 1-D column, "
                                 f"got shape {values.shape}")
            if length is None:
                length, first = len(values), name
            elif len(values) != length:
                raise ValueError(f"{type(self).__name__}.{name}: has {len(values)} values "
                                 f"but {first} has {length}")
            object.__setattr__(self, name, values)

    @classmethod
    def from_columns(cls, **columns):
        """Build a batch from lists (or arrays), one keyword per column."""
        names = [name for name, _ in _columns(cls)]
        missing = [n for n in names if n not in columns]
        unknown = [n for n in columns if n not in names]
        if missing or unknown:
            raise ValueError(f"{cls.__name__}: missing columns {missing}, unknown columns {unknown}")
        return cls(**columns)

    def __len__(self) -> int:
        return len(getattr(self, _columns(type(self))[0][0]))

    def rows(self, start: int, stop: int):
        """Rows ``start:stop`` as a batch of the same kind (views, no copies)."""
        return type(self)(**{name: getattr(self, name)[start:stop]
                             for name, _ in _columns(type(self))})


@dataclass(frozen=True)
class AuthBatch(_Columnar):
    """Authentication events; attribute columns hold `stable_hash64` values (0 = absent).

    >>> b = AuthBatch.from_columns(account=[0], kind=[LOGIN_SUCCESS], ts_ms=[1000], session=[7],
    ...     ip=[1], device=[2], asn=[3], country=[4], user_agent=[5])
    >>> len(b), b.kind.dtype
    (1, dtype('int8'))
    """
    account: np.ndarray = column(np.int64)
    kind: np.ndarray = column(np.int8)
    ts_ms: np.ndarray = column(np.int64)
    session: np.ndarray = column(np.uint64)
    ip: np.ndarray = column(np.uint64)
    device: np.ndarray = column(np.uint64)
    asn: np.ndarray = column(np.uint64)
    country: np.ndarray = column(np.uint64)
    user_agent: np.ndarray = column(np.uint64)


@dataclass(frozen=True)
class OrderBatch(_Columnar):
    """Orders. `price` is filled by the caller (limit price, else last trade);
    `holdings_value` is the account's holdings in yen just before the order and
    `ticker_adv_value` the ticker's usual daily traded value in yen (NaN = unknown)."""
    account: np.ndarray = column(np.int64)
    ticker: np.ndarray = column(np.int64)
    is_buy: np.ndarray = column(np.bool_)
    qty: np.ndarray = column(np.float64)
    price: np.ndarray = column(np.float64)
    margin: np.ndarray = column(np.bool_)
    overseas: np.ndarray = column(np.bool_)
    ts_ms: np.ndarray = column(np.int64)
    session: np.ndarray = column(np.uint64)
    ip: np.ndarray = column(np.uint64)
    device: np.ndarray = column(np.uint64)
    user_agent: np.ndarray = column(np.uint64)
    holdings_value: np.ndarray = column(np.float64)
    ticker_adv_value: np.ndarray = column(np.float64)


@dataclass(frozen=True)
class TradeBatch(_Columnar):
    """Market trades (executions) per ticker."""
    ticker: np.ndarray = column(np.int64)
    price: np.ndarray = column(np.float64)
    qty: np.ndarray = column(np.float64)
    ts_ms: np.ndarray = column(np.int64)


@dataclass(frozen=True)
class FlowBatch(_Columnar):
    """Orders re-keyed by ticker, with the account's risk score (0..1) from the account side."""
    ticker: np.ndarray = column(np.int64)
    account: np.ndarray = column(np.int64)
    is_buy: np.ndarray = column(np.bool_)
    notional: np.ndarray = column(np.float64)
    account_risk: np.ndarray = column(np.float64)
    ts_ms: np.ndarray = column(np.int64)


def require(batch, name: str, ok: np.ndarray, rule: str) -> None:
    """Raise ValueError naming `name` and the first row where `ok` is False."""
    if not ok.all():
        row = int(np.argmin(ok))
        value = getattr(batch, name)[row]
        raise ValueError(f"{type(batch).__name__}.{name}: row {row} has {value!r}; {rule}")
