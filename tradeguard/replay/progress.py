"""A one-line progress bar on stderr, by event time: how far through the replayed range.

>>> import io
>>> out = io.StringIO()
>>> bar = ProgressBar(0, 1_000, stream=out, every_s=0)
>>> bar.update(500, records=10, orders=4, phase="range")
>>> out.getvalue().split("\\r")[-1][:46]
'replay range   [###############...............'
>>> bar.done()
>>> out.getvalue().split("\\r")[-1][:52]
'replay done    [##############################] 100%'

"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]

WIDTH = 30


class ProgressBar:
    """``update(event_ts, ...)`` redraws at most every ``every_s``; ``done()`` ends the line."""

    def __init__(self, first_ms: int | None, last_ms: int, stream: TextIO | None = None,
                 every_s: float = 0.2, label: str = "replay") -> None:
        self.first_ms, self.last_ms = first_ms, last_ms
        self.stream = sys.stderr if stream is None else stream
        self.every_s, self.label = every_s, label
        self.started = time.monotonic()
        self._drawn = float("-inf")
        self._line = ""
        self._last = (first_ms or 0, 0, 0)

    def update(self, event_ms: int, records: int, orders: int, phase: str,
               first_ms: int | None = None) -> None:
        """Redraw for the stream at ``event_ms``; ``first_ms``: where it began, if not known."""
        if self.first_ms is None:
            self.first_ms = first_ms
        self._last = (event_ms, records, orders)
        now = time.monotonic()
        if now - self._drawn < self.every_s:
            return
        self._drawn = now
        first = event_ms if self.first_ms is None else self.first_ms
        span = max(self.last_ms - first, 1)
        self._draw(min(max((event_ms - first) / span, 0.0), 1.0), records, orders, phase, now)

    def _draw(self, share: float, records: int, orders: int, phase: str, now: float) -> None:
        filled = int(share * WIDTH)
        rate = records / max(now - self.started, 1e-9)
        self._line = (f"{self.label} {phase:7s} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                      f"{share:4.0%} {records:,} records, {orders:,} orders, {rate:,.0f} rec/s")
        self.stream.write("\r" + self._line)
        self.stream.flush()

    def done(self) -> None:
        """The last line, at 100%, then a newline."""
        _, records, orders = self._last
        self._draw(1.0, records, orders, "done", time.monotonic())
        self.stream.write("\n")
        self.stream.flush()
