"""The control board: every ticker halt and account control in force, as one worker sees it.

Fed by the compacted ``controls.tickers`` and ``controls.accounts`` topics,
which every worker reads in full, so a halt decided on the worker that owns a
ticker is enforced by every worker that scores a buy of it. Expiry is judged
at read time, in event time: an order is checked against the halts in force
at its own ``ts``, so a halt past its ``expires_at`` is not enforced even before
its release record arrives, however fast or slow the records are replayed.

**Order, not arrival, decides** (docs/security.md). Every control record
carries ``seq``, its target's sequence number, inside the signed payload: a
record is applied only if it follows the one in force (a higher ``seq``), so a
genuine record captured and re-sent later (an old release after a new freeze,
an old halt after its release) changes nothing and is counted. A record this
board issues (the core's own halts, releases, freezes) gets the next ``seq`` of
its target here, before it is signed and published; the board rebuilt from the
compacted topic after a restart holds the last ``seq`` of every target, so the
next one follows it. Two writers that issue the same ``seq`` for one target at
the same moment (the worker owning it and an analyst's console) are settled the
same way on every board whatever the arrival order: the record with the greater
``tiebreak`` wins.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

__all__ = ["APPLIED", "ControlBoard", "DUPLICATE", "REPLAYED", "UNSEQUENCED", "tiebreak"]

APPLIED, DUPLICATE, REPLAYED, UNSEQUENCED = "applied", "duplicate", "replayed", "unsequenced"
# The fields that say what a control does: equal at one seq means the same record read
# twice (our own, echoed by the topic); the signature and evidence are left out.
_MEANING = ("action", "ts", "expires_at", "reason", "source")


def tiebreak(record: dict[str, Any]) -> str:
    """A total order between two different records of one target with one ``seq``."""
    meaning = "\x1f".join(repr(record.get(k)) for k in _MEANING)
    return hashlib.sha256(meaning.encode()).hexdigest()


class ControlBoard:
    """Latest control record per ticker and per account, applied in ``seq`` order.

    >>> board = ControlBoard()
    >>> board.apply_ticker({"ticker": "9999", "action": "halt_buys", "expires_at": 2_000,
    ...                     "reason": "coordinated risky buying", "ts": 1_000})
    'applied'
    >>> board.ticker_halt("9999", now_ms=1_500)["seq"]            # issued here: seq 1
    1
    >>> board.ticker_halt("9999", now_ms=2_000) is None   # expired
    True
    >>> board.ticker_halt("9999", now_ms=999) is None     # an order from before the halt
    True
    >>> board.accept_ticker({"ticker": "9999", "action": "release", "expires_at": None,
    ...                      "reason": "r", "ts": 1_100, "seq": 2})
    'applied'
    >>> board.accept_ticker({"ticker": "9999", "action": "halt_buys", "expires_at": 2_000,
    ...                      "reason": "coordinated risky buying", "ts": 1_000, "seq": 1})
    'replayed'
    >>> board.ticker_halt("9999", now_ms=1_500) is None
    True
    """

    def __init__(self) -> None:
        self._tickers: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        # The last record applied per target, releases included: what a newer one must follow.
        self._last: dict[tuple[str, str], dict[str, Any]] = {}
        self.refused: Counter = Counter()  # (kind, why) -> records refused

    # -- writing ------------------------------------------------------------------------------

    def apply_ticker(self, record: dict[str, Any]) -> str:
        """Apply a ticker control; one without ``seq`` is issued here (gets the next one)."""
        return self._apply("ticker", record["ticker"], record, self._tickers)

    def apply_account(self, record: dict[str, Any]) -> str:
        """Apply an account control; one without ``seq`` is issued here (gets the next one)."""
        return self._apply("account", record["account_id"], record, self._accounts)

    def accept_ticker(self, record: dict[str, Any]) -> str:
        """A ticker control read from the topic: it must carry its ``seq`` (no issuing here)."""
        return self._accept("ticker", record, self.apply_ticker)

    def accept_account(self, record: dict[str, Any]) -> str:
        """An account control read from the topic: it must carry its ``seq``."""
        return self._accept("account", record, self.apply_account)

    def _accept(self, kind: str, record: dict[str, Any], apply) -> str:
        if not isinstance(record.get("seq"), int):
            self.refused[(kind, UNSEQUENCED)] += 1
            return UNSEQUENCED
        return apply(record)

    def _apply(self, kind: str, target: str, record: dict[str, Any],
               in_force: dict[str, dict[str, Any]]) -> str:
        last = self._last.get((kind, target))
        if record.get("seq") is None:  # issued by this board's owner: it follows what we hold
            record["seq"] = (last["seq"] if last else 0) + 1
        elif last is not None:
            verdict = _follows(last, record)
            if verdict != APPLIED:
                if verdict == REPLAYED:
                    self.refused[(kind, REPLAYED)] += 1
                return verdict
        self._last[(kind, target)] = record
        if record["action"] == "release":
            in_force.pop(target, None)
        else:
            in_force[target] = record
        return APPLIED

    # -- reading ------------------------------------------------------------------------------

    def next_seq(self, kind: str, target: str) -> int:
        """The ``seq`` a new control of ``target`` (kind ``ticker`` or ``account``) must carry."""
        last = self._last.get((kind, target))
        return (last["seq"] if last else 0) + 1

    def last_record(self, kind: str, target: str) -> dict[str, Any] | None:
        """The last control applied to ``target``, a release included (None: never any)."""
        return self._last.get((kind, target))

    def last_records(self, kind: str) -> list[dict[str, Any]]:
        """The last control applied to every ``kind`` target, releases included."""
        return [r for (k, _), r in self._last.items() if k == kind]

    def ticker_halt(self, ticker: str, now_ms: int) -> dict[str, Any] | None:
        """The halt in force on ``ticker`` at ``now_ms``: issued at or before it, not expired."""
        halt = self._tickers.get(ticker)
        if halt is None or now_ms < halt["ts"]:
            return None
        expires = halt.get("expires_at")
        if expires is not None and now_ms >= expires:
            return None
        return halt

    def account_control(self, account_id: str) -> dict[str, Any] | None:
        """The step-up or freeze in force on an account, or None."""
        return self._accounts.get(account_id)

    def active_halts(self, now_ms: int) -> list[dict[str, Any]]:
        return [h for t in self._tickers if (h := self.ticker_halt(t, now_ms)) is not None]

    def expired_halts(self, now_ms: int) -> list[dict[str, Any]]:
        """Halts whose expiry has passed but whose release has not been published yet."""
        return [h for h in self._tickers.values()
                if h.get("expires_at") is not None and now_ms >= h["expires_at"]]

    def account_controls(self) -> list[dict[str, Any]]:
        return list(self._accounts.values())

    def ticker_controls(self) -> list[dict[str, Any]]:
        """Every halt recorded (expired or not), in no particular order."""
        return list(self._tickers.values())

    def has_account_controls(self, accounts: list[str]) -> list[bool]:
        """For each account: is any control recorded for it? (a batch-wide membership test)"""
        controlled = self._accounts
        return [a in controlled for a in accounts]

    def has_ticker_controls(self, tickers: list[str]) -> list[bool]:
        """For each ticker: is a halt recorded (expired or not)? Confirm with ``ticker_halt``."""
        halted = self._tickers
        return [t in halted for t in tickers]


def _follows(last: dict[str, Any], record: dict[str, Any]) -> str:
    """APPLIED if ``record`` follows ``last`` (same target); else DUPLICATE or REPLAYED."""
    if record["seq"] > last["seq"]:
        return APPLIED
    if record["seq"] < last["seq"]:
        return REPLAYED
    if all(record.get(k) == last.get(k) for k in _MEANING):
        return DUPLICATE  # our own record echoed by the topic, or the one in force re-sent
    # Two writers issued the same seq: every board keeps the same one, whatever came first.
    return APPLIED if tiebreak(record) > tiebreak(last) else REPLAYED
