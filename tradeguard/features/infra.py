"""Campaign signal: how many distinct accounts share one piece of infrastructure.

Takeover campaigns reuse attacker IPs, ASNs and devices across many victim
accounts; a household or an office shares an IP among a few. The state is a
bounded open-addressing table keyed by the infrastructure hash, each slot
holding a small ring of the most recent distinct accounts seen on it.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numba
import numpy as np

from . import _snapshot
from .primitives import NEVER_MS, ring_count, ring_touch, table_claim

__all__ = ["InfraParams", "SharedInfrastructure"]


@dataclass(frozen=True)
class InfraParams:
    """Window and table sizes of SharedInfrastructure.

    Counts saturate at accounts_per_key. A key idle for a whole window frees
    its slot; when a key's probe_length slots are all busy, the least
    recently seen key among them is evicted (its count restarts from 1).
    """
    window_s: float = 3600.0
    slots: int = 2**16           # keys remembered (power of two)
    probe_length: int = 8
    accounts_per_key: int = 16

    def __post_init__(self) -> None:
        if self.slots <= 0 or self.slots & (self.slots - 1):
            raise ValueError(f"InfraParams.slots: {self.slots} is not a power of two")
        if self.accounts_per_key < 1 or self.probe_length < 1 or not self.window_s > 0:
            raise ValueError(f"InfraParams: window_s, probe_length and accounts_per_key must be "
                             f"positive, got {self}")

    def kernel(self) -> "_KernelParams":
        return _KernelParams(int(self.window_s * 1000), int(self.probe_length))


_KernelParams = namedtuple("_KernelParams", "window_ms probe_length")
KEY_STATE = np.dtype([("key", np.uint64), ("stamp_ms", np.int64)], align=True)


@numba.njit(cache=True)
def _observe(table, ring_account, ring_ms, keys, accounts, ts_ms, p, out):
    """Walk observations in order: the distinct accounts on each key within the window, itself included."""
    for i in range(keys.shape[0]):
        if keys[i] == 0:  # attribute absent: nothing is shared
            out[i] = 0
            continue
        t = ts_ms[i]
        slot, fresh = table_claim(table, keys[i], t, p.window_ms, p.probe_length)
        if fresh:
            ring_account[slot, :] = -1
            ring_ms[slot, :] = NEVER_MS
        table[slot].stamp_ms = t if fresh else max(table[slot].stamp_ms, t)
        ring_touch(ring_account[slot], ring_ms[slot], accounts[i], t)
        out[i] = ring_count(ring_ms[slot], t - p.window_ms + 1)


class SharedInfrastructure:
    """Distinct accounts per IP / ASN / device hash in a sliding window.

    Use one instance per attribute kind (IPs and devices should not share counts).

    >>> infra = SharedInfrastructure()
    >>> infra.observe(np.array([7, 7, 7, 0], np.uint64), np.array([1, 2, 1, 3]),
    ...               np.array([0, 1000, 2000, 3000])).tolist()
    [1, 2, 2, 0]
    """

    def __init__(self, params: InfraParams = InfraParams()) -> None:
        self.params = params
        self._kernel_params = params.kernel()
        self._table = np.zeros(params.slots, KEY_STATE)
        self._table["stamp_ms"] = NEVER_MS
        self._ring_account = np.full((params.slots, params.accounts_per_key), -1, np.int64)
        self._ring_ms = np.full((params.slots, params.accounts_per_key), NEVER_MS, np.int64)

    @property
    def nbytes(self) -> int:
        return self._table.nbytes + self._ring_account.nbytes + self._ring_ms.nbytes

    def observe(self, keys: np.ndarray, accounts: np.ndarray, ts_ms: np.ndarray) -> np.ndarray:
        """Record each (key, account) in order; int64 distinct accounts on the key in the window."""
        keys = np.ascontiguousarray(keys, np.uint64)
        accounts = np.ascontiguousarray(accounts, np.int64)
        ts_ms = np.ascontiguousarray(ts_ms, np.int64)
        for name, column in (("accounts", accounts), ("ts_ms", ts_ms)):
            if column.shape != keys.shape or keys.ndim != 1:
                raise ValueError(f"SharedInfrastructure.observe: {name} has shape {column.shape}, "
                                 f"keys has {keys.shape}; both must be the same 1-D length")
        out = np.empty(len(keys), np.int64)
        _observe(self._table, self._ring_account, self._ring_ms, keys, accounts, ts_ms,
                 self._kernel_params, out)
        return out

    def to_bytes(self) -> bytes:
        return _snapshot.pack(self.params, {"table": self._table, "ring_account": self._ring_account,
                                            "ring_ms": self._ring_ms})

    @classmethod
    def from_bytes(cls, data: bytes) -> "SharedInfrastructure":
        params, arrays, _ = _snapshot.unpack(data, InfraParams)
        restored = cls(params)
        restored._table, restored._ring_account = arrays["table"], arrays["ring_account"]
        restored._ring_ms = arrays["ring_ms"]
        return restored
