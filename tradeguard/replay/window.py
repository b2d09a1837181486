"""The range a replay covers, in event time (epoch milliseconds), from what people type.

``--from`` and ``--to`` are ISO-8601 instants (an instant without an offset is
UTC) or epoch milliseconds; ``--lead-in`` and ``--settle`` are durations such as
``90s``, ``30m``, ``1h30m`` or ``2d``; ``--lead-in all`` starts at the oldest
record the topics still hold.

>>> w = ReplayWindow.parse("2025-04-16T09:00:00+09:00", "2025-04-16T09:05:00+09:00", "1h")
>>> w.start_ms, w.end_ms, w.warmup_from_ms, w.read_until_ms
(1744761600000, 1744761900000, 1744758000000, 1744762200000)
>>> ReplayWindow.parse("1744761600000", "1744761900000", "all").warmup_from_ms is None
True
>>> parse_duration("1h30m"), parse_duration("250ms"), parse_duration("0")
(5400000, 250, 0)
>>> ReplayWindow.parse("2025-04-16T09:05:00Z", "2025-04-16T09:00:00Z", "1h")
Traceback (most recent call last):
...
tradeguard.replay.window.WindowError: --to (2025-04-16T09:00:00.000Z) must be after --from (2025-04-16T09:05:00.000Z)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from streams.records import TS_MAX, TS_MIN

__all__ = ["DEFAULT_LEAD_IN", "DEFAULT_SETTLE", "ReplayWindow", "WindowError", "format_ms",
           "parse_duration", "parse_instant"]

#: A lead-in of an hour rebuilds sessions, the infrastructure window and the ticker windows;
#: learned state older than that (models, devices seen for months) needs ``all``.
DEFAULT_LEAD_IN = "1h"
#: How far past ``--to`` each topic is read, for records a little out of event-time order
#: on their partition and for decisions published late (a worker catching up).
DEFAULT_SETTLE = "5m"

_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class WindowError(ValueError):
    """A time or duration that cannot be used; the message names the option and the value."""


def parse_instant(text: str, option: str = "--from") -> int:
    """Epoch milliseconds from ISO-8601 (UTC when no offset is given) or from digits."""
    text = text.strip()
    if text.isdigit():
        ms = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise WindowError(f"{option} {text!r} is neither an ISO-8601 time "
                              "(2025-04-16T09:00:00+09:00) nor epoch milliseconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = int(round(moment.timestamp() * 1000))
    if not TS_MIN <= ms <= TS_MAX:
        raise WindowError(f"{option} {text!r} is outside 2000-01-01 .. 2100-01-01 "
                          "(epoch milliseconds, not seconds?)")
    return ms


def parse_duration(text: str, option: str = "--lead-in") -> int:
    """Milliseconds from ``90s``, ``30m``, ``1h30m``, ``2d``, ``250ms`` or ``0``."""
    compact = text.strip().lower().replace(" ", "")
    if compact == "0":
        return 0
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise WindowError(f"{option} {text!r} is not a duration like 90s, 30m, 1h30m or 2d")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def format_ms(ms: int | None) -> str:
    """An epoch-millisecond instant as ISO-8601 UTC (``None`` stays ``None``-ish: ``-``)."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3] + "Z"


@dataclass(frozen=True)
class ReplayWindow:
    """Orders decided in ``[start_ms, end_ms)`` are compared; the engine warms up before.

    ``lead_in_ms`` None: the warm-up starts at the oldest retained record.
    """

    start_ms: int
    end_ms: int
    lead_in_ms: int | None
    settle_ms: int

    @classmethod
    def parse(cls, start: str, end: str, lead_in: str = DEFAULT_LEAD_IN,
              settle: str = DEFAULT_SETTLE) -> "ReplayWindow":
        start_ms, end_ms = parse_instant(start, "--from"), parse_instant(end, "--to")
        if end_ms <= start_ms:
            raise WindowError(f"--to ({format_ms(end_ms)}) must be after --from "
                              f"({format_ms(start_ms)})")
        lead = None if lead_in.strip().lower() == "all" else parse_duration(lead_in, "--lead-in")
        return cls(start_ms, end_ms, lead, parse_duration(settle, "--settle"))

    @property
    def warmup_from_ms(self) -> int | None:
        """Event time the engine starts from (None: the oldest retained record)."""
        return None if self.lead_in_ms is None else self.start_ms - self.lead_in_ms

    @property
    def read_until_ms(self) -> int:
        """Each partition is read until a record at or past this event time (or its end)."""
        return self.end_ms + self.settle_ms

    def in_range(self, ts: int) -> bool:
        return self.start_ms <= ts < self.end_ms

    def describe(self) -> dict:
        return {"from": format_ms(self.start_ms), "to": format_ms(self.end_ms),
                "from_ms": self.start_ms, "to_ms": self.end_ms,
                "lead_in": "all" if self.lead_in_ms is None else f"{self.lead_in_ms / 1000:g}s",
                "warmup_from": format_ms(self.warmup_from_ms) if self.lead_in_ms is not None
                else "oldest retained record",
                "settle": f"{self.settle_ms / 1000:g}s"}
