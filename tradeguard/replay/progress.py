"""A one-line progress bar on stderr, by event time: how far through the replayed range.

>>> import io
>>> out = io.StringIO()
>>> bar = ProgressBar(0, 1_000, stream=out, every_s=0)
>>> bar.update(500, records=10, orders=4, phase="range"); bar.done()
>>> out.getvalue().splitlines()[-1].startswith("replay range")
True
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

    def update(self, event_ms: int, records: int, orders: int, phase: str) -> None:
        now = time.monotonic()
        if now - self._drawn < self.every_s:
            return
        self._drawn = now
        if self.first_ms is None:
            self.first_ms = event_ms
        span = max(self.last_ms - self.first_ms, 1)
        share = min(max((event_ms - self.first_ms) / span, 0.0), 1.0)
        filled = int(share * WIDTH)
        rate = records / max(now - self.started, 1e-9)
        self._line = (f"{self.label} {phase:7s} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                      f"{share:4.0%} {records:,} records, {orders:,} orders, {rate:,.0f} rec/s")
        self.stream.write("\r" + self._line)
        self.stream.flush()

    def done(self) -> None:
        if self._line:
            self.stream.write("\n")
            self.stream.flush()
