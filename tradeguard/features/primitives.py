"""Numba building blocks shared by the feature kernels.

Each function touches one small piece of state (one account's Bloom filter,
one probe window of a hash table, one ring, one row of window buckets), so
the per-record kernels in account.py and ticker.py read as a list of
steps. Their plain-Python twins live in reference.py.

All times are event times in epoch milliseconds; a record older than the state
it updates is treated as simultaneous with it (decay factors never exceed 1).
"""

from __future__ import annotations

import numba
import numpy as np

# "Never happened" timestamp: far in the past, yet `now - NEVER_MS` cannot overflow int64.
NEVER_MS = -(2**62)

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
BLOOM_HASHES = 4  # bits set per item; see bloom_false_positive_rate for why 4


@numba.njit(cache=True)
def mix64(x):
    """SplitMix64 finaliser: spreads the bits of one uint64 over all 64."""
    z = x + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def decay(dt_ms, tau_ms):
    """Weight left after dt_ms of exponential decay with time constant tau_ms."""
    return np.exp(-max(dt_ms, 0) / tau_ms)


@numba.njit(cache=True)
def observed_window_ms(age_ms, tau_ms):
    """Effective length of an exponential window that has only seen age_ms of history.

    Dividing a decayed count by this (instead of tau) removes the cold-start
    bias, as in Adam's bias correction; floored at 1 s so age 0 stays finite.
    """
    return max(tau_ms * (1.0 - np.exp(-max(age_ms, 0) / tau_ms)), 1000.0)


@numba.njit(cache=True)
def _double_hash(words, kind, value):
    """(h1, h2, bits in the row) of (kind, value): bit j of its BLOOM_HASHES is
    (h1 + j * h2) mod bits (Kirsch-Mitzenmacher double hashing; h2 odd)."""
    h = mix64(value ^ (np.uint64(kind + 1) * GOLDEN))
    return h & _LOW32, (h >> np.uint64(32)) | np.uint64(1), np.uint64(words.shape[0] * 64)


@numba.njit(cache=True)
def bloom_test_and_add(words, kind, value):
    """Walk the BLOOM_HASHES bits of (kind, value) in one filter row: True if all were set; sets them.

    value 0 means "attribute absent" and always reads as seen, so a missing
    attribute never looks new.
    """
    if value == 0:
        return True
    h1, h2, n_bits = _double_hash(words, kind, value)
    present = True
    for j in range(BLOOM_HASHES):
        bit = (h1 + np.uint64(j) * h2) % n_bits
        mask = np.uint64(1) << (bit & np.uint64(63))
        word = bit >> np.uint64(6)
        if words[word] & mask == 0:
            present = False
            words[word] |= mask
    return present


@numba.njit(cache=True)
def bloom_test(words, kind, value):
    """Whether all BLOOM_HASHES bits of (kind, value) are set in one filter row; sets none.

    For asking "has the account used this before?" about something that must not become
    usual by being asked about (an order's IP on a replayed session). Value 0 (absent)
    reads as seen, as in bloom_test_and_add.
    """
    if value == 0:
        return True
    h1, h2, n_bits = _double_hash(words, kind, value)
    for j in range(BLOOM_HASHES):
        bit = (h1 + np.uint64(j) * h2) % n_bits
        if words[bit >> np.uint64(6)] & (np.uint64(1) << (bit & np.uint64(63))) == 0:
            return False
    return True


@numba.njit(cache=True)
def table_find(table, key, now_ms, ttl_ms, max_probe):
    """Walk key's probe window of an open-addressing table: the slot holding key, live, or -1."""
    mask = table.shape[0] - 1
    start = mix64(key) & np.uint64(mask)
    for j in range(max_probe):
        slot = (start + np.uint64(j)) & np.uint64(mask)
        if table[slot].key == key and now_ms - table[slot].stamp_ms <= ttl_ms:
            return np.int64(slot)
    return np.int64(-1)


@numba.njit(cache=True)
def table_claim(table, key, now_ms, ttl_ms, max_probe):
    """Walk key's probe window: (its live slot, False), else (a reused slot now keyed to key, True).

    A reused slot is the first empty or expired one, else the one with the
    oldest stamp: eviction is least-recently-stamped within the window.
    The caller initialises the rest of a reused slot.
    """
    mask = table.shape[0] - 1
    start = mix64(key) & np.uint64(mask)
    victim = np.int64(-1)
    oldest = np.int64(-1)
    for j in range(max_probe):
        slot = np.int64((start + np.uint64(j)) & np.uint64(mask))
        row = table[slot]
        live = now_ms - row.stamp_ms <= ttl_ms
        if row.key == key and live:
            return slot, False
        if victim < 0 and (row.key == 0 or not live):
            victim = slot
        if oldest < 0 or row.stamp_ms < table[oldest].stamp_ms:
            oldest = slot
    if victim < 0:
        victim = oldest
    table[victim].key = key
    return victim, True


@numba.njit(cache=True)
def ring_touch(accounts, stamps, account, now_ms):
    """Walk one ring of distinct accounts: refresh account's entry, else overwrite the stalest.

    Returns (slot, previous stamp of that slot for this account or NEVER_MS).
    """
    stalest = 0
    for j in range(accounts.shape[0]):
        if accounts[j] == account:
            previous = stamps[j]
            stamps[j] = max(previous, now_ms)
            return j, previous
        if stamps[j] < stamps[stalest]:
            stalest = j
    accounts[stalest] = account
    stamps[stalest] = now_ms
    return stalest, np.int64(NEVER_MS)


@numba.njit(cache=True)
def ring_count(stamps, since_ms):
    """Walk one ring: how many entries were stamped at or after since_ms."""
    n = 0
    for j in range(stamps.shape[0]):
        if stamps[j] >= since_ms:
            n += 1
    return n


@numba.njit(cache=True)
def bucket_add(epochs, sums, epoch, column, amount):
    """Add amount to one column of epoch's bucket in a ring of time buckets, recycling a stale bucket."""
    i = epoch % epochs.shape[0]
    if epochs[i] < epoch:
        epochs[i] = epoch
        sums[i, :] = 0.0
    if epochs[i] == epoch:  # an older epoch has left the window: dropped
        sums[i, column] += amount


@numba.njit(cache=True)
def bucket_sum(epochs, sums, epoch, column):
    """Walk the buckets of the window that ends at epoch: the sum of one column."""
    total = 0.0
    for i in range(epochs.shape[0]):
        if epoch - epochs.shape[0] < epochs[i] <= epoch:
            total += sums[i, column]
    return total


def bloom_false_positive_rate(items: int, bits: int, hashes: int = BLOOM_HASHES) -> float:
    """Chance that an item never added reads as seen, after `items` adds: (1 - e^(-k n / m))^k.

    >>> round(bloom_false_positive_rate(20, 1024), 6), round(bloom_false_positive_rate(100, 1024), 4)
    (3.2e-05, 0.0109)
    """
    return float((1.0 - np.exp(-hashes * items / bits)) ** hashes)
