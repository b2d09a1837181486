"""The partitioning contract, checked per record: a key must sit where murmur2 puts it.

An account's orders, logins and labels meet in one partition only because
every producer hashes the key the same way (murmur2, Java's default). A
gateway that produces orders with librdkafka's default partitioner
(``consistent_random``, CRC32) puts most accounts' orders on another
partition than their logins: the worker owning the orders never sees the
login, and a takeover looks like a session it knows nothing about. Nothing
on the broker stops such a producer, so the engine checks each record it
reads and dead-letters the ones off their partition, with the fix in the
reason.

>>> from streams.topics import partition_for
>>> keys = [b"acct-000042", b"acct-000042", None]
>>> [(i, str(e)) for i, e in misplaced(keys, partition_for("acct-000042", 8), 8)]
[(2, 'record has no key: key it as topics.json says, hashed with murmur2')]
>>> [i for i, _ in misplaced(keys, 0, 8)]
[0, 1, 2]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from streams.schema import RecordError
from streams.topics import _murmur2

__all__ = ["FIX", "PartitionError", "belongs", "home_partition", "misplaced"]

FIX = ("produce with murmur2 (Java and KafkaJS defaults; confluent-kafka and other librdkafka "
       "clients: partitioner=murmur2_random)")


class PartitionError(RecordError):
    """A record on another partition than its key hashes to (or with no key at all)."""

    label = "wrong_partition"


@lru_cache(maxsize=1 << 18)
def home_partition(key: bytes, partitions: int) -> int:
    """The partition murmur2 puts ``key`` in among ``partitions`` (cached: keys repeat).

    >>> home_partition(b"acct-000042", 8), home_partition(b"7203", 8)
    (2, 5)
    """
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def belongs(key: bytes | None, partition: int, partitions: int) -> bool:
    """True when a record keyed ``key`` may sit on ``partition`` (replay filters with it)."""
    return key is not None and home_partition(key, partitions) == partition


def misplaced(keys: Sequence[bytes | None], partition: int, partitions: int
              ) -> list[tuple[int, PartitionError]]:
    """(index, why) for each key of records read from ``partition`` that does not belong there."""
    out = []
    home = home_partition
    for i, key in enumerate(keys):
        if key is None:
            out.append((i, PartitionError("record has no key: key it as topics.json says, "
                                          "hashed with murmur2")))
        elif home(key, partitions) != partition:
            out.append((i, PartitionError(
                f"key {bytes(key)[:64].decode('utf-8', 'replace')!r} hashes to partition "
                f"{home(key, partitions)} of {partitions} under murmur2 but sits on partition "
                f"{partition}: the producer partitions another way; {FIX}")))
    return out
