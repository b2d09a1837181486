"""The control board: every ticker halt and account control in force, as one worker sees it.

Fed by the compacted ``controls.tickers`` and ``controls.accounts`` topics,
which every worker reads in full, so a halt decided on the worker that owns a
ticker is enforced by every worker that scores a buy of it. Expiry is judged
at read time, in event time: an order is checked against the halts in force
at its own ``ts``, so a halt past its ``expires_at`` is not enforced even before
its release record arrives, however fast or slow the records are replayed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ControlBoard"]


class ControlBoard:
    """Latest control record per ticker and per account.

    >>> board = ControlBoard()
    >>> board.apply_ticker({"ticker": "9999", "action": "halt_buys", "expires_at": 2_000,
    ...                     "reason": "coordinated risky buying", "ts": 1_000})
    >>> board.ticker_halt("9999", now_ms=1_500)["action"]
    'halt_buys'
    >>> board.ticker_halt("9999", now_ms=2_000) is None   # expired
    True
    >>> board.ticker_halt("9999", now_ms=999) is None     # an order from before the halt
    True
    """

    def __init__(self) -> None:
        self._tickers: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}

    def apply_ticker(self, record: dict[str, Any]) -> None:
        if record["action"] == "release":
            self._tickers.pop(record["ticker"], None)
        else:
            self._tickers[record["ticker"]] = record

    def apply_account(self, record: dict[str, Any]) -> None:
        if record["action"] == "release":
            self._accounts.pop(record["account_id"], None)
        else:
            self._accounts[record["account_id"]] = record

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

    def has_account_controls(self, accounts: list[str]) -> list[bool]:
        """For each account: is any control recorded for it? (a batch-wide membership test)"""
        controlled = self._accounts
        return [a in controlled for a in accounts]

    def has_ticker_controls(self, tickers: list[str]) -> list[bool]:
        """For each ticker: is a halt recorded (expired or not)? Confirm with ``ticker_halt``."""
        halted = self._tickers
        return [t in halted for t in tickers]
