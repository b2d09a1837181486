"""The control records as types: a ticker's halt or release, an account's step-up, freeze
or release, as whoever decides them builds them.

The schemas in ``streams/records.py`` (``TICKER_CONTROL``, ``ACCOUNT_CONTROL``) say what
is on the wire; these say what a writer fills in. ``record()`` is the wire form, the dict
the board applies, ``streams.signing`` signs and the producer encodes: the fields in the
schema's order, without ``seq`` (issued by the board that applies it, or given) and
``signature`` (added by ``sign``), so what is signed is what it always was.
tests/house/test_control_types.py holds the fields to the schemas.

>>> TickerControl("7203", "release", "halt expired", {"halt_ts": 1}, None, "engine", 9).record()
... # doctest: +NORMALIZE_WHITESPACE
{'ticker': '7203', 'action': 'release', 'reason': 'halt expired', 'evidence': {'halt_ts': 1},
 'expires_at': None, 'source': 'engine', 'ts': 9}
>>> AccountControl("a-1", "frozen", "r", None, "engine", 9)
Traceback (most recent call last):
...
ValueError: action: must be one of ['step_up', 'freeze', 'release'], got 'frozen'
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from streams.vocabulary import ACCOUNT_ACTIONS, TICKER_ACTIONS

__all__ = ["AccountControl", "TickerControl"]


class _Control:
    """What both controls do: check their action, and give their wire form."""

    ACTIONS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        action = self.action  # type: ignore[attr-defined]
        if action not in self.ACTIONS:
            raise ValueError(f"action: must be one of {list(self.ACTIONS)}, got {action!r}")

    def record(self, **more: Any) -> dict[str, Any]:
        """The wire record: the fields in the schema's order, then ``more`` (``seq``)."""
        wire = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return {**wire, **more}


@dataclass(frozen=True)
class TickerControl(_Control):
    """A halt of a ticker's buy orders, or its release (``controls.tickers``, key ticker)."""

    ACTIONS = TICKER_ACTIONS

    ticker: str
    action: str  # halt_buys, release
    reason: str
    evidence: dict[str, Any] | None
    expires_at: int | None  # when a halt lapses by itself; None for a release
    source: str
    ts: int


@dataclass(frozen=True)
class AccountControl(_Control):
    """A step-up, a freeze or a release of an account (``controls.accounts``, key account_id)."""

    ACTIONS = ACCOUNT_ACTIONS

    account_id: str
    action: str  # step_up, freeze, release
    reason: str
    evidence: dict[str, Any] | None
    source: str
    ts: int
