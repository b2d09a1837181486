"""Dense integer ids for string keys, stable 64-bit hashes, and array growth.

Feature state lives in NumPy arrays indexed by small dense integers, so the
Numba kernels never see a Python object. `DenseIds` hands those integers out;
`stable_hash64` turns free-text attributes (IP, device, user agent...) into
uint64 values that are equal in every process (Python's `hash` is salted per
process, which would break snapshots and partition moves).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["DenseIds", "stable_hash64", "grown"]


class DenseIds:
    """Map string keys to dense ids 0, 1, 2, ... in order of first sight.

    >>> ids = DenseIds()
    >>> ids.get_or_add("acct-7"), ids.get_or_add("acct-9"), ids.get_or_add("acct-7")
    (0, 1, 0)
    >>> ids.get("acct-9"), ids.get("nobody"), len(ids), ids.keys()
    (1, -1, 2, ['acct-7', 'acct-9'])
    >>> DenseIds.from_bytes(ids.to_bytes()).get("acct-9")
    1
    """

    def __init__(self, keys: list[str] | None = None) -> None:
        self._keys: list[str] = []
        self._ids: dict[str, int] = {}
        for key in keys or []:
            self.get_or_add(key)

    def get_or_add(self, key: str) -> int:
        """The id of `key`, giving it the next free id if it is new."""
        found = self._ids.get(key)
        if found is None:
            found = len(self._keys)
            self._ids[key] = found
            self._keys.append(key)
        return found

    def get(self, key: str) -> int:
        """The id of `key`, or -1 if it has never been added."""
        return self._ids.get(key, -1)

    def keys(self) -> list[str]:
        """All keys, in id order (``keys()[i]`` has id ``i``)."""
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def to_bytes(self) -> bytes:
        return json.dumps(self._keys).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "DenseIds":
        return cls(json.loads(data.decode()))


def stable_hash64(value: str | None) -> np.uint64:
    """A process-independent 64-bit hash of `value`; 0 means "absent".

    0 is reserved for None and "" so kernels can tell "no IP on this record"
    from a real IP; the one real value in 2**64 that hashes to 0 is moved to 1.

    >>> int(stable_hash64(None)), int(stable_hash64("")), stable_hash64("10.0.0.1") == stable_hash64("10.0.0.1")
    (0, 0, np.True_)
    """
    if not value:
        return np.uint64(0)
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little") or 1)


def grown(array: np.ndarray, rows_needed: int, fill) -> np.ndarray:
    """`array` with at least `rows_needed` rows, doubling its row capacity.

    Doubling keeps the amortised cost of growth O(1) per new id; the new rows
    hold `fill` (the "never seen" state of a row), old rows are copied.

    >>> grown(np.zeros(2), 3, -1.0)
    array([ 0.,  0., -1., -1.])
    """
    capacity = array.shape[0]
    if rows_needed <= capacity:
        return array
    new_capacity = max(capacity, 1)
    while new_capacity < rows_needed:
        new_capacity *= 2
    out = np.empty((new_capacity,) + array.shape[1:], dtype=array.dtype)
    out[:capacity] = array
    out[capacity:] = fill
    return out
