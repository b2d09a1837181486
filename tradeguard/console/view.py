"""What the console knows: the engine's topics folded into bounded, queryable state.

Pure and Kafka-free: :meth:`ConsoleView.absorb` takes one decoded record of a
registry topic; the queries return plain dicts for the pages. The activity is
bounded (ring buffers and least-recently-used maps), so memory stays flat at
any rate and a page never asks for more than it can draw: the live stream is
the newest matching decisions out of the last ``limits.decisions``, counters
are per action and per reason, charts are per-bucket sums.

The controls are not activity: they live on a :class:`ControlBoard` of their
own, complete for every ticker and account ever controlled and applied in
``seq`` order as the engine's board applies them, so no amount of traffic
evicts a halt or a freeze and a replayed record changes nothing here either
(docs/security.md). Only each target's control *history* (display) is bounded.

>>> v = ConsoleView()
>>> v.absorb("decisions", {"order_id": "o1", "account_id": "a", "ticker": "T", "side": "buy",
...          "action": "hold", "score": 0.7, "reasons": [{"code": "new_device", "value": 1}],
...          "model_version": "m", "order_ts": 5, "ts": 6}, now_ms=1_000)
>>> v.summary(now_ms=1_000)["actions"], [d["order_id"] for d in v.alerts()]
({'allow': 0, 'hold': 1, 'block': 0}, ['o1'])
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Iterable

from streams.topics import (AUDIT, AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS,
                            FEEDBACK, MARKET_TRADES, ORDERS)
from streams.vocabulary import ACTIONS
from tradeguard.core.board import APPLIED, ControlBoard

__all__ = ["ConsoleView", "DecisionFilter", "ViewLimits"]

NOVELTY = (("device", "device_id"), ("ip", "ip"), ("network", "asn"), ("country", "country"),
           ("agent", "user_agent"))


@dataclass(frozen=True)
class ViewLimits:
    """How much of each stream the console keeps (the memory bound)."""

    decisions: int = 5_000  # newest decisions, the live stream's pool
    alerts: int = 2_000  # newest held or blocked decisions
    orders: int = 20_000  # orders with their decision and label, by order id
    accounts: int = 20_000  # accounts with recent logins and orders
    tickers: int = 5_000  # tickers with chart buckets
    logins_per_account: int = 20
    orders_per_account: int = 30
    seen_per_account: int = 32  # distinct devices, IPs, ... remembered per account
    buckets_per_ticker: int = 720
    control_history: int = 20  # control records kept per ticker and per account
    audit: int = 1_000
    rate_window_s: int = 10


@dataclass(frozen=True)
class DecisionFilter:
    """The live stream's filters; empty fields match everything.

    >>> f = DecisionFilter(action="block", reason="ticker_halted")
    >>> f.matches({"action": "block", "reasons": [{"code": "ticker_halted", "value": 1}],
    ...            "ticker": "T", "account_id": "a"})
    True
    """

    action: str = ""
    reason: str = ""
    ticker: str = ""
    account: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> "DecisionFilter":
        return cls(**{k: query.get(k, "").strip()[:128] for k in ("action", "reason", "ticker",
                                                                     "account")})

    def matches(self, d: dict[str, Any]) -> bool:
        return ((not self.action or d["action"] == self.action)
                and (not self.ticker or d["ticker"] == self.ticker)
                and (not self.account or d["account_id"] == self.account)
                and (not self.reason or any(r["code"] == self.reason for r in d["reasons"])))

    @property
    def active(self) -> bool:
        return any((self.action, self.reason, self.ticker, self.account))


class _Lru(OrderedDict):
    """An OrderedDict that drops its least recently touched entries past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def touch(self, key: str, make) -> Any:
        value = self.get(key)
        if value is None:
            value = self[key] = make()
            while len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


@dataclass
class _Account:
    logins: deque
    orders: deque
    seen: dict[str, OrderedDict]


@dataclass
class _Ticker:
    buckets: OrderedDict  # bucket start ms -> [last_price, volume, buy_value, risky_buy_value]
    last_price: float | None = None


class ConsoleView:
    """The engine's recent output and the current controls, in bounded memory."""

    def __init__(self, limits: ViewLimits = ViewLimits(), bucket_ms: int = 10_000) -> None:
        self.limits, self.bucket_ms = limits, bucket_ms
        self.recent: deque[dict] = deque(maxlen=limits.decisions)
        self.alert_queue: deque[dict] = deque(maxlen=limits.alerts)
        self.orders = _Lru(limits.orders)  # order_id -> {"order", "decision", "label"}
        self.accounts = _Lru(limits.accounts)
        self.tickers = _Lru(limits.tickers)
        # Exact, never evicted: what the engine enforces (see the module docstring).
        self.board = ControlBoard()
        self._history = _Lru(limits.tickers + limits.accounts)  # (kind, target) -> deque
        self.actions: Counter = Counter()
        self.reasons: Counter = Counter()  # reason codes of held and blocked orders
        self._per_second: deque[list] = deque(maxlen=limits.rate_window_s + 2)
        self.audit_log: deque[dict] = deque(maxlen=limits.audit)
        self._audit_ids: set[str] = set()
        self._proposals: dict[str, dict] = {}  # pending, by proposal id
        self.absorbed: Counter = Counter()  # records per topic
        self.rejected: Counter = Counter()  # undecodable records per topic (the feed counts)
        self.last_decision_ms: int | None = None  # when the newest decision arrived (wall)

    # --- folding records in ------------------------------------------------------------------

    def absorb(self, name: str, record: dict[str, Any], now_ms: int) -> None:
        """Fold one decoded record of registry topic ``name`` in."""
        self.absorbed[name] += 1
        handler = self._HANDLERS.get(name)
        if handler is not None:
            handler(self, record, now_ms)

    def absorb_many(self, records: Iterable[tuple[str, dict]], now_ms: int) -> None:
        for name, record in records:
            self.absorb(name, record, now_ms)

    def _account(self, account_id: str) -> _Account:
        lim = self.limits
        return self.accounts.touch(account_id, lambda: _Account(
            deque(maxlen=lim.logins_per_account), deque(maxlen=lim.orders_per_account),
            {k: OrderedDict() for k, _ in NOVELTY}))

    def _ticker(self, ticker: str) -> _Ticker:
        return self.tickers.touch(ticker, lambda: _Ticker(OrderedDict()))

    def _bucket(self, ticker: _Ticker, ts: int) -> list:
        start = ts - ts % self.bucket_ms
        bucket = ticker.buckets.get(start)
        if bucket is None:
            bucket = ticker.buckets[start] = [ticker.last_price, 0, 0.0, 0.0]
            while len(ticker.buckets) > self.limits.buckets_per_ticker:
                ticker.buckets.popitem(last=False)
        return bucket

    def _on_decision(self, d: dict, now_ms: int) -> None:
        entry = self.orders.touch(d["order_id"], lambda: {"order": None, "decision": None,
                                                          "label": None})
        redelivered = entry["decision"] is not None  # decided again after a worker crash
        entry["decision"] = d
        self.last_decision_ms = now_ms
        if redelivered:
            return
        self.recent.append(d)
        if d["action"] != "allow":
            self.alert_queue.append(d)
        self.actions[d["action"]] += 1
        if d["action"] != "allow":
            self.reasons.update(r["code"] for r in d["reasons"])
        second = now_ms // 1000
        if not self._per_second or self._per_second[-1][0] != second:
            self._per_second.append([second, 0, 0, 0])
        self._per_second[-1][1 + ACTIONS.index(d["action"])] += 1
        order = entry["order"]
        if d["side"] == "buy" and order is not None:
            t = self._ticker(d["ticker"])
            price = order["price"] or t.last_price
            if price:
                bucket = self._bucket(t, d["order_ts"])
                bucket[2] += order["qty"] * price
                if d["action"] != "allow":
                    bucket[3] += order["qty"] * price

    def _on_order(self, o: dict, now_ms: int) -> None:
        self.orders.touch(o["order_id"], lambda: {"order": None, "decision": None,
                                                  "label": None})["order"] = o
        orders = self._account(o["account_id"]).orders
        if o["order_id"] not in orders:
            orders.append(o["order_id"])

    def _on_login(self, e: dict, now_ms: int) -> None:
        account = self._account(e["account_id"])
        known = any(account.seen.values()) if account.seen else False
        flags = {k: (e[f] not in account.seen[k]) if known and e[f] is not None else None
                 for k, f in NOVELTY}
        account.logins.append({**e, "new": flags})
        if e["event"] == "login_success":
            for k, f in NOVELTY:
                if e[f] is not None:
                    seen = account.seen[k]
                    seen[e[f]] = True
                    seen.move_to_end(e[f])
                    while len(seen) > self.limits.seen_per_account:
                        seen.popitem(last=False)

    def _on_trade(self, t: dict, now_ms: int) -> None:
        ticker = self._ticker(t["ticker"])
        bucket = self._bucket(ticker, t["ts"])
        bucket[0] = ticker.last_price = t["price"]
        bucket[1] += t["qty"]

    def _on_control(self, kind: str, c: dict) -> None:
        accept = self.board.accept_ticker if kind == "ticker" else self.board.accept_account
        verdict = accept(c)
        if verdict != APPLIED:  # an echo of our own write changes nothing; a replay is counted
            if verdict != "duplicate":
                self.rejected[f"controls.{kind}s ({verdict})"] += 1
            return
        key = c["ticker"] if kind == "ticker" else c["account_id"]
        self._history.touch((kind, key), lambda: deque(
            maxlen=self.limits.control_history)).append(c)

    def _on_ticker_control(self, c: dict, now_ms: int) -> None:
        self._on_control("ticker", c)

    def _on_account_control(self, c: dict, now_ms: int) -> None:
        self._on_control("account", c)

    def _on_feedback(self, f: dict, now_ms: int) -> None:
        if f["order_id"] is not None and f["order_id"] in self.orders:
            self.orders[f["order_id"]]["label"] = f

    def _on_audit(self, a: dict, now_ms: int) -> None:
        if a["audit_id"] in self._audit_ids:
            return  # applied locally when written, then read back from the topic
        if len(self._audit_ids) >= 4 * self.limits.audit:
            self._audit_ids = {r["audit_id"] for r in self.audit_log}
        self._audit_ids.add(a["audit_id"])
        self.audit_log.append(a)
        pid = a["proposal_id"]
        if pid and a["outcome"] == "proposed":
            self._proposals[pid] = a
        elif pid and a["outcome"] in ("done", "withdrawn"):
            self._proposals.pop(pid, None)

    _HANDLERS = {
        DECISIONS: _on_decision,
        ORDERS: _on_order,
        AUTH_EVENTS: _on_login,
        MARKET_TRADES: _on_trade,
        CONTROLS_TICKERS: _on_ticker_control,
        CONTROLS_ACCOUNTS: _on_account_control,
        FEEDBACK: _on_feedback,
        AUDIT: _on_audit,
    }

    # --- queries -------------------------------------------------------------------------------

    def summary(self, now_ms: int) -> dict[str, Any]:
        """Totals and rates per action, top reasons, and how fresh the stream is."""
        window = self.limits.rate_window_s
        now_s = now_ms // 1000
        recent = [b for b in self._per_second if now_s - window <= b[0] < now_s]
        rates = {a: sum(b[1 + i] for b in recent) / window for i, a in enumerate(ACTIONS)}
        return {
            "actions": {a: self.actions[a] for a in ACTIONS},
            "rates": rates,
            "rate": sum(rates.values()),
            "top_reasons": self.reasons.most_common(8),
            "last_decision_age_s": (None if self.last_decision_ms is None
                                    else (now_ms - self.last_decision_ms) / 1000),
            "halts": len(self.halts(now_ms)),
            "controlled_accounts": len(self.controlled_accounts()),
            "rejected": dict(self.rejected),
        }

    def decisions(self, flt: DecisionFilter = DecisionFilter(), limit: int = 50) -> list[dict]:
        """The newest decisions matching ``flt``, newest first, at most ``limit``.

        Held and blocked ones are searched in their own longer queue too, so a
        filter on them is not washed out by a flood of allows.
        """
        pool = self.alert_queue if flt.action in ("hold", "block") else self.recent
        out = []
        for d in reversed(pool):
            if flt.matches(d):
                out.append(d)
                if len(out) >= limit:
                    break
        return out

    def alerts(self, limit: int = 50) -> list[dict]:
        """Held and blocked orders, newest first, each with its order and label."""
        out = []
        for d in reversed(self.alert_queue):
            entry = self.orders.get(d["order_id"]) or {}
            out.append({**d, "order": entry.get("order"), "label": entry.get("label")})
            if len(out) >= limit:
                break
        return out

    def ticker_control(self, ticker: str) -> dict | None:
        """The ticker's latest control record (a release included), or None."""
        return self.board.last_record("ticker", ticker)

    def account_control(self, account_id: str) -> dict | None:
        """The account's latest control record (a release included), or None."""
        return self.board.last_record("account", account_id)

    def history(self, kind: str, target: str) -> list[dict]:
        """The target's recent control records, newest first (display only: bounded)."""
        return list(reversed(self._history.get((kind, target)) or ()))

    def halt_in_force(self, ticker: str, now_ms: int) -> dict | None:
        c = self.ticker_control(ticker)
        if c and c["action"] == "halt_buys" and (c["expires_at"] is None
                                                 or c["expires_at"] > now_ms):
            return c
        return None

    def halts(self, now_ms: int) -> list[dict]:
        """Buy halts in force, newest first."""
        active = [c for c in self.board.ticker_controls()
                  if self.halt_in_force(c["ticker"], now_ms) is c]
        return sorted(active, key=lambda c: -c["ts"])

    def released_halts(self, limit: int = 10) -> list[dict]:
        found = [c for c in self.board.last_records("ticker") if c["action"] == "release"]
        return sorted(found, key=lambda c: -c["ts"])[:limit]

    def controlled_accounts(self) -> list[dict]:
        """Accounts under step-up or freeze, newest first."""
        return sorted(self.board.account_controls(), key=lambda c: -c["ts"])

    def ticker(self, ticker: str, span_ms: int = 30 * 60_000) -> dict[str, Any]:
        """A ticker's control, its history, and chart buckets (event time) around its halt.

        The chart spans ``span_ms``: centred on the latest halt's event time when
        there is one, else ending at the newest bucket.
        """
        t = self.tickers.get(ticker)
        control, history = self.ticker_control(ticker), self.history("ticker", ticker)
        if t is None:
            halt_ts = self._halt_event_ts(history)
            return {"ticker": ticker, "control": control, "history": history, "series": [],
                    "halt_event_ts": halt_ts, "range": None}
        halt_ts = self._halt_event_ts(history)
        if not t.buckets:
            lo = hi = None
        elif halt_ts is not None:
            lo, hi = halt_ts - span_ms // 2, halt_ts + span_ms // 2
        else:
            hi = max(t.buckets) + self.bucket_ms
            lo = hi - span_ms
        series = [{"ts": ts, "price": b[0], "volume": b[1], "buy_value": b[2],
                   "risky_buy_value": b[3],
                   "risky_share": (b[3] / b[2]) if b[2] else None}
                  for ts, b in sorted(t.buckets.items()) if lo <= ts <= hi]
        return {"ticker": ticker, "control": control, "history": history,
                "series": series, "halt_event_ts": halt_ts,
                "range": None if lo is None else (lo, hi)}

    def _halt_event_ts(self, history: list[dict]) -> int | None:
        """The latest halt's moment in event time: its trigger order's, else the record's."""
        halt_ts = None
        for c in history:
            if c["action"] == "halt_buys":
                trigger = (c["evidence"] or {}).get("trigger_order_id")
                entry = self.orders.get(trigger) if trigger else None
                order = entry and entry["order"]
                halt_ts = order["ts"] if order else c["ts"]
                break
        return halt_ts

    def account(self, account_id: str) -> dict[str, Any]:
        """An account's control, logins (newest first, with what was new) and orders."""
        a = self.accounts.get(account_id)
        control, history = self.account_control(account_id), self.history("account", account_id)
        if a is None:
            return {"account_id": account_id, "control": control, "history": history,
                    "logins": [], "orders": []}
        orders = []
        for oid in reversed(a.orders):
            entry = self.orders.get(oid)
            if entry is not None:
                orders.append({"order_id": oid, **entry})
        return {"account_id": account_id, "control": control, "history": history,
                "logins": list(reversed(a.logins)), "orders": orders}

    def order(self, order_id: str) -> dict[str, Any] | None:
        entry = self.orders.get(order_id)
        return None if entry is None else {"order_id": order_id, **entry}

    def audit(self, limit: int = 50, target: str | None = None) -> list[dict]:
        out = []
        for a in reversed(self.audit_log):
            if target is None or a["target"] == target:
                out.append(a)
                if len(out) >= limit:
                    break
        return out

    def proposals(self, now_ms: int, ttl_ms: int) -> list[dict]:
        """Proposals not yet lapsed, newest first, ``stale`` when the target changed since."""
        out = []
        for p in sorted(self._proposals.values(), key=lambda p: -p["ts"]):
            if now_ms - p["ts"] > ttl_ms:
                continue
            current = (self.ticker_control(p["target"]) if p["target_kind"] == "ticker"
                       else self.account_control(p["target"]))
            stale = "" if current == p["before"] else (
                "the target's state changed since it was proposed")
            out.append({**p, "stale": stale})
        return out

    def proposal(self, proposal_id: str) -> dict | None:
        return self._proposals.get(proposal_id)
