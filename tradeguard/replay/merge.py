"""Many partitions' records, each in offset order, merged into one event-time-ordered stream.

Records arrive in chunks, partition by partition, as a Kafka consumer fetches
them. A record may be released once no open source can still deliver one
before it: below the *frontier*, the smallest latest event time among sources
that are not finished (a partition's records come in event-time order, the
contract the live engine's alignment relies on too). Records at equal event
time go in one canonical order, the order the decision core resolves ties in
within a batch (``tradeguard.core.accounts._runs``: a login before an order, a
trade before flow; a label after the orders at its time), so cutting the stream
anywhere gives the core the same inputs:

    (ts, market.trades < auth.events < orders < feedback, partition, offset)

A record that arrives after records later than it were released (its partition
was out of event-time order) is released with the next chunk and counted in
``late``: nothing is dropped.

>>> m = EventTimeMerge()
>>> m.add(("orders", 0), [10, 30], ["o1", "o2"], [5, 6])   # event ts, items, offsets
>>> m.add(("auth.events", 1), [10], ["a1"], [7])
>>> [item for item in m.release()]            # the frontier is 10: nothing is below it
[]
>>> m.add(("auth.events", 1), [40], ["a2"], [8])
>>> m.release()                               # frontier 30 (orders/0): ties in canonical order
[('auth.events', 'a1'), ('orders', 'o1')]
>>> m.close(("orders", 0)); m.close(("auth.events", 1))
>>> m.release()
[('orders', 'o2'), ('auth.events', 'a2')]
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import islice
from operator import le
from typing import Any, Sequence

import numpy as np

from streams.topics import AUTH_EVENTS, FEEDBACK, MARKET_TRADES, ORDERS

__all__ = ["EventTimeMerge", "TOPIC_RANK"]

#: Tie order at equal event time (see the module docstring).
TOPIC_RANK = {MARKET_TRADES: 0, AUTH_EVENTS: 1, ORDERS: 2, FEEDBACK: 3}
_NEG = -(2 ** 62)


@dataclass
class _Source:
    ts: list[int] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    latest: int = _NEG  # the latest event time received
    released_up_to: int = _NEG  # every record below this was released
    sorted: bool = True
    open: bool = True


class EventTimeMerge:
    """Buffers per (topic, partition) source; ``release`` hands out what is safe, in order."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, int], _Source] = {}
        self.late = 0  # records that came after later ones had been released
        self.buffered = 0

    def expect(self, source: tuple[str, int]) -> None:
        """Declare a source before its first record: nothing passes it until it delivers."""
        self._sources.setdefault(source, _Source())

    def add(self, source: tuple[str, int], ts: Sequence[int], items: Sequence[Any],
            offsets: Sequence[int]) -> None:
        """Append records of ``source`` in offset order, as columns: event ts, item, offset."""
        s = self._sources.setdefault(source, _Source())
        if not s.open:
            raise ValueError(f"source {source} was closed; it cannot deliver more records")
        if not ts:
            return
        if s.sorted and (ts[0] < s.latest or not all(map(le, ts, islice(ts, 1, None)))):
            s.sorted = False
        s.latest = max(s.latest, max(ts))
        if min(ts) < s.released_up_to:
            self.late += sum(1 for t in ts if t < s.released_up_to)
        s.ts += ts
        s.items += items
        s.offsets += offsets
        self.buffered += len(ts)

    def close(self, source: tuple[str, int]) -> None:
        """The source delivers nothing more (its end, or its records passed the range)."""
        self._sources.setdefault(source, _Source()).open = False

    def pending(self, source: tuple[str, int]) -> int:
        s = self._sources.get(source)
        return len(s.ts) if s else 0

    def latest(self, source: tuple[str, int]) -> int:
        s = self._sources.get(source)
        return s.latest if s else _NEG

    @property
    def frontier(self) -> int | None:
        """Records below this event time may go (None: every source is closed, all may go)."""
        open_latest = [s.latest for s in self._sources.values() if s.open]
        return min(open_latest) if open_latest else None

    @property
    def exhausted(self) -> bool:
        return self.buffered == 0 and all(not s.open for s in self._sources.values())

    def release(self) -> list[tuple[str, Any]]:
        """``(topic, item)`` of every record below the frontier, in canonical order."""
        frontier = self.frontier
        ts: list[int] = []
        rank: list[int] = []
        part: list[int] = []
        offsets: list[int] = []
        items: list[tuple[str, Any]] = []
        for (name, p), s in self._sources.items():
            if not s.ts:
                continue
            if frontier is None:
                take = list(range(len(s.ts)))
            elif s.sorted:
                take = range(bisect_left(s.ts, frontier))
            else:
                take = [i for i, t in enumerate(s.ts) if t < frontier]
            if not take:
                continue
            n = len(take)
            r = TOPIC_RANK.get(name, len(TOPIC_RANK))
            if isinstance(take, range):  # the usual case: a prefix
                ts += s.ts[:n]
                offsets += s.offsets[:n]
                items += [(name, it) for it in s.items[:n]]
                del s.ts[:n], s.items[:n], s.offsets[:n]
            else:
                taken = set(take)
                keep = [i for i in range(len(s.ts)) if i not in taken]
                ts += [s.ts[i] for i in take]
                offsets += [s.offsets[i] for i in take]
                items += [(name, s.items[i]) for i in take]
                s.ts = [s.ts[i] for i in keep]
                s.items = [s.items[i] for i in keep]
                s.offsets = [s.offsets[i] for i in keep]
                s.sorted = all(a <= b for a, b in zip(s.ts, s.ts[1:]))
            rank += [r] * n
            part += [p] * n
            if frontier is not None:
                s.released_up_to = max(s.released_up_to, frontier)
        if not items:
            return []
        self.buffered -= len(items)
        order = np.lexsort((np.asarray(offsets, np.int64), np.asarray(part, np.int64),
                            np.asarray(rank, np.int64), np.asarray(ts, np.int64)))
        return [items[i] for i in order.tolist()]
