"""What a detector did to a session, in event time: the one input every score is computed from.

The engine's records (wall-clock ``ts``) and each baseline's in-process run are
both turned into an ``Outcome``, so one scoring function judges them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from streams.topics import ORDERS

__all__ = ["ACCOUNT_STOPS", "AccountAction", "Halt", "Outcome", "STOPPED", "session_orders"]

#: Order actions that stop an order before it executes (the gateway waits for the decision).
STOPPED = frozenset({"hold", "block"})
#: Account actions that stop a taken-over account: the engine's controls, and a refused login.
ACCOUNT_STOPS = frozenset({"step_up", "freeze", "block_login"})


@dataclass(frozen=True)
class Halt:
    """Buys of ``ticker`` refused from event time ``ts`` until ``until`` (None: to the end)."""

    ticker: str
    ts: int
    source: str = "engine"
    until: int | None = None

    def in_force_after(self, ts: int) -> bool:
        """Whether the halt was (or still is) in force at some time from ``ts`` on."""
        return self.until is None or self.until > ts


@dataclass(frozen=True)
class AccountAction:
    """An account stopped (``step_up``, ``freeze`` or ``block_login``) from event time ``ts``."""

    account_id: str
    action: str
    ts: int


@dataclass
class Outcome:
    """A detector's verdicts on one session.

    ``actions`` maps order_id to allow/hold/block; an order missing from it was
    never decided and counts as allowed (the gateway failed open). ``scores``,
    when the detector has them, feed the precision/recall-against-threshold curve.
    """

    name: str
    actions: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    halts: list[Halt] = field(default_factory=list)
    account_actions: list[AccountAction] = field(default_factory=list)

    def stopped(self, order_id: str) -> bool:
        return self.actions.get(order_id) in STOPPED

    def first_account_stops(self) -> dict[str, AccountAction]:
        """The earliest stopping action on each account."""
        out: dict[str, AccountAction] = {}
        for a in sorted(self.account_actions, key=lambda a: a.ts):
            if a.action in ACCOUNT_STOPS:
                out.setdefault(a.account_id, a)
        return out


def session_orders(records: Iterable[tuple[str, dict[str, Any]]], open_ms: int) -> list[dict]:
    """The orders placed once the session opened: what the scorecard judges (not the warm-up)."""
    return [r for t, r in records if t == ORDERS and r["ts"] >= open_ms]
