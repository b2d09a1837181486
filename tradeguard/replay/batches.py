"""The merged stream in large batches for the decision core, each with the profiles it needs.

``tradeguard replay`` feeds the core (``InProcessEngine.process``) the merged,
event-time-ordered stream; this module decides where the calls begin and end,
and what the engine's profile book must hold before each (docs/replay.md,
"Ticker profiles").
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterator

from streams.topics import MARKET_TRADES, partition_for
from tradeguard.core.blocks import FlowBlock
from tradeguard.core.board import ControlBoard
from tradeguard.core.profiles import KEEP, PROFILE_LAG_MS, ProfileBook
from tradeguard.core.tickers import TickerCore
from tradeguard.policy.config import PolicyConfig

__all__ = ["BATCH", "Batch", "LiveBatches"]

#: Most records in one call of the core.
BATCH = 1 << 16


@dataclass
class Batch:
    """Records of the merged stream for one call of the core, and the profiles it publishes."""

    records: list[tuple[str, Any]]
    #: The profiles the batch's trades publish, as the engine returns them (``Outputs.profiles``).
    profiles: list[dict[str, Any]]
    #: For each, the event time from which an order sees it: ``PROFILE_LAG_MS`` after its own
    #: ``ts``, or, on a partition quiet for longer, its closing trade's.
    visible_ms: list[int]

    def ahead(self, book: ProfileBook) -> None:
        """Put the batch's profiles in ``book`` before the core runs it, each dated so that the
        book (which answers by event time, ``lag_ms`` after a version's ts) shows it to the
        orders that come after its closing trade and past its own time, and to no other."""
        for p, visible in zip(self.profiles, self.visible_ms):
            book.apply(p["ticker"], visible - book.lag_ms, p["adv_value"], p["last_price"])


class LiveBatches:
    """Cuts the merged stream into large batches for the core, each with the profiles it needs.

    The live worker's ticker side closes a partition's profile period when that
    partition sees a trade of a later period, and publishes the profiles of the
    period it closed (ending at ``v``) before deciding any later order; an order
    is valued with the profile of its ticker published at least
    ``PROFILE_LAG_MS`` before it. ``InProcessEngine.run`` instead closes every
    partition's period at each boundary of the stream, which a live worker does
    not do for a partition with no trade since (docs/replay.md, "Ticker profiles").

    The core makes a batch's profiles visible only at the batch's end, and the
    live worker's come a minute apart: cutting there would call the core every
    minute or more often. Instead each ``Batch`` comes with the profiles its
    trades publish, computed ahead by a ticker core per partition fed the trades
    alone (a profile depends on trades only), and ``Batch.ahead`` puts them in
    the engine's book first. In event-time order, an order comes after the
    closing trade (at ``c``) exactly when its ts is at or past ``c`` (ties go
    trades first), so the live worker's order sees the profile exactly when its
    ts is at or past both ``v + PROFILE_LAG_MS`` and ``c``: the book is given
    that time. A batch ends before a partition's ``MAX_CLOSINGS + 1``-th closing,
    so the book's last ``KEEP`` versions of a ticker still hold the one each
    order of the batch needs (each closing may add two: the one dated ahead and
    the engine's own); it also ends with each call and holds at most ``limit``.
    A test holds the decisions to those of one record per batch
    (tests/replay/test_batches.py).
    """

    #: Periods a partition may close in one batch (the book keeps ``KEEP`` versions a ticker).
    MAX_CLOSINGS = KEEP // 4

    def __init__(self, partitions: int, period_ms: int = 60_000, limit: int = BATCH) -> None:
        self.partitions, self.period_ms, self.limit = partitions, period_ms, limit
        self._periods: dict[int, int] = {}  # ticker partition -> its latest trade's period
        # Trades only, as the engine's ticker sides see them: the profiles they publish.
        self._tickers = [TickerCore(period_ms) for _ in range(partitions)]
        self._board, self._policy = ControlBoard(), PolicyConfig.defaults()  # no flow: unused

    def __call__(self, items: list[tuple[str, Any]]) -> Iterator[Batch]:
        periods, parts, period_ms = self._periods, self.partitions, self.period_ms
        start = 0
        closings: dict[int, int] = defaultdict(int)  # partition -> periods closed in the batch
        for i, (name, record) in enumerate(items):
            if name == MARKET_TRADES:
                p = partition_for(record.ticker, parts)
                period, last = record.ts // period_ms, periods.get(p)
                if last is None or period > last:
                    periods[p] = period
                    if last is not None:  # this trade publishes the period that ended
                        if closings[p] >= self.MAX_CLOSINGS:
                            yield self._cut(items[start:i])
                            start = i
                            closings.clear()
                        closings[p] += 1
            if i + 1 - start >= self.limit:
                yield self._cut(items[start:i + 1])
                start = i + 1
                closings.clear()
        if start < len(items):
            yield self._cut(items[start:])

    def _cut(self, records: list[tuple[str, Any]]) -> Batch:
        """The batch, with the profiles its trades publish, in the order the engine does."""
        trades: dict[int, list[Any]] = defaultdict(list)
        for name, record in records:
            if name == MARKET_TRADES:
                trades[partition_for(record.ticker, self.partitions)].append(record)
        profiles: list[dict[str, Any]] = []
        visible: list[int] = []
        for p in sorted(trades):
            published = self._tickers[p].process(trades[p], FlowBlock.empty(), self._board,
                                                 self._policy).profiles
            # The ticker side walks its trades by ts: the trade that closed the period ending
            # at v is its first at or past v.
            ts = sorted(t.ts for t in trades[p])
            profiles += published
            visible += [max(d["ts"] + PROFILE_LAG_MS, ts[bisect_left(ts, d["ts"])])
                        for d in published]
        return Batch(records, profiles, visible)
