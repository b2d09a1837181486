"""The words every part of TradeGuard and every gateway shares, declared once.

The decision record's ``action`` (``streams/records.py`` enumerates these), in rising
severity: an action's code, where a column holds actions as small integers (the core's
decision blocks, metrics), is its index here. The control records' actions, likewise.
"""

from __future__ import annotations

__all__ = ["ACCOUNT_ACTIONS", "ACTIONS", "ALLOW", "BLOCK", "HOLD", "SEVERITY", "TICKER_ACTIONS"]

#: allow: pass; hold: stop and ask (step-up or analyst review); block: reject.
ACTIONS = ("allow", "hold", "block")
ALLOW, HOLD, BLOCK = ACTIONS
#: action -> its code: the higher, the stricter.
SEVERITY = {action: code for code, action in enumerate(ACTIONS)}

#: controls.tickers: halt buys, or end the halt.
TICKER_ACTIONS = ("halt_buys", "release")
#: controls.accounts: require re-authentication, reject all orders, or end either.
ACCOUNT_ACTIONS = ("step_up", "freeze", "release")
