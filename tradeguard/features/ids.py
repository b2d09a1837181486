"""Dense integer ids for string keys, stable 64-bit hashes, and array growth.

Feature state lives in NumPy arrays indexed by small dense integers, so the
Numba kernels never see a Python object. `DenseIds` hands those integers out;
`stable_hash64` turns free-text attributes (IP, device, user agent...) into
uint64 values that are equal in every process (Python's `hash` is salted per
process, which would break snapshots and partition moves).
"""

from __future__ import annotations

import hashlib
import heapq
import json

import numpy as np

__all__ = ["DenseIds", "stable_hash64", "grown"]


class DenseIds:
    """Map string keys to dense ids 0, 1, 2, ... in order of first sight.

    A key can be removed (an account gone idle); its id is then free and the next
    new key takes the lowest free id, so the arrays indexed by these ids stop growing
    once keys leave as fast as they come.

    >>> ids = DenseIds()
    >>> ids.get_or_add("acct-7"), ids.get_or_add("acct-9"), ids.get_or_add("acct-7")
    (0, 1, 0)
    >>> ids.get("acct-9"), ids.get("nobody"), len(ids), ids.keys()
    (1, -1, 2, ['acct-7', 'acct-9'])
    >>> DenseIds.from_bytes(ids.to_bytes()).get("acct-9")
    1
    >>> ids.remove("acct-7"), ids.keys(), len(ids), ids.span
    (0, [None, 'acct-9'], 1, 2)
    >>> again = DenseIds.from_bytes(ids.to_bytes())
    >>> again.get("acct-9"), again.get_or_add("acct-3"), again.keys()
    (1, 0, ['acct-3', 'acct-9'])
    """

    def __init__(self, keys: list[str | None] | None = None) -> None:
        self._keys: list[str | None] = []
        self._ids: dict[str, int] = {}
        self._free: list[int] = []  # a heap: the lowest free id is reused first
        for key in keys or []:  # each key keeps its position: its id
            if key is None:
                self._free.append(len(self._keys))
            else:
                self._ids[key] = len(self._keys)
            self._keys.append(key)
        heapq.heapify(self._free)

    def get_or_add(self, key: str) -> int:
        """The id of `key`, giving it the lowest free id (else the next new one) if it is new."""
        found = self._ids.get(key)
        if found is None:
            if self._free:
                found = heapq.heappop(self._free)
                self._keys[found] = key
            else:
                found = len(self._keys)
                self._keys.append(key)
            self._ids[key] = found
        return found

    def get(self, key: str) -> int:
        """The id of `key`, or -1 if it is not held."""
        return self._ids.get(key, -1)

    def key_of(self, id_: int) -> str | None:
        """The key holding ``id_``, None for a free id."""
        return self._keys[id_]

    def remove(self, key: str) -> int:
        """Forget `key`; its id (returned) is free for the next new key."""
        found = self._ids.pop(key)
        self._keys[found] = None
        heapq.heappush(self._free, found)
        return found

    def keys(self) -> list[str | None]:
        """All keys, in id order (``keys()[i]`` has id ``i``; None where an id is free)."""
        return list(self._keys)

    def __len__(self) -> int:
        """Keys held."""
        return len(self._ids)

    @property
    def span(self) -> int:
        """Ids handed out so far, free ones included: the rows an array indexed by them needs."""
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
