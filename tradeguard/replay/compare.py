"""Two sides' decisions on the same orders, compared, with the cause of every difference.

Pure: no Kafka. One side is what the live engine published (``decisions``,
``controls.*``); the other is a replay of the same recorded inputs, or the
shadow policy's ``decisions.shadow``. Orders are matched on ``order_id``.

An order is *identical* when action, score, reasons, model_version and
policy_version are all equal. Otherwise the difference is named by kind
(``action``, ``score``: same action but another score or other reasons,
``version``: only the model or policy version differs) and by its cause, the
first of these that holds:

policy
    the two sides decided under different policies (``policy_version``).
redelivered
    the live engine decided the order more than once (a worker restarted
    after a crash and decided it again) and its decisions disagree.
halt_propagation
    the replay blocked a buy for a halt that the live engine raised too, but
    the live engine decided the buy before that halt was published: the
    order-to-halt round trip (order, ``tickers.flow``, ticker side, board) that
    the in-process replay does not have. The report gives the gap in ms.
halt_differs
    a halt was in force on one side only.
account_control
    a step-up or freeze was in force on one side only.
model_state
    the models differ: another ``model_version`` (a warm-up that did not reach
    back to where the live engine started, or a restart that restored older
    state), or, with the same version, only the models' signals differ after
    an earlier difference on the same partition (the models learn from every
    order's features, also where they differed without changing a decision).
profile_timing
    signals computed from the ticker's profile differ (or none strong enough
    to be named), and the profile the replay valued the order with was
    published by the live worker after it decided the order (times in the report).
login_timing
    login signals differ (new device, failed logins, ...; the models' scores
    and the ranking of reasons follow), and the account's latest auth event
    before the order was written to Kafka less than ``LOGIN_RACE_MS`` before the
    live worker decided it.
account_history
    an earlier order of the same account differed: what the account's features
    remember (its usual order value, what it holds) carries the difference.
feature_state
    none of the above: the signals that differ are listed.

>>> live = {"o1": [Decided("o1", "a", "T", "buy", "allow", 0.1, b"[]", "m1", "p1", 5, 900)]}
>>> cmp = DecisionComparison(live, sides=("live", "replay"))
>>> cmp.add(Decided("o1", "a", "T", "buy", "hold", 0.6,
...                 b'[{"code":"new_device","value":1.0}]', "m1", "p1", 5))
>>> out = cmp.finish(Evidence())
>>> out["orders"]["action_changed"], out["transitions"]["allow"]["hold"]
(1, 1)
>>> d = out["differences"][0]
>>> d["cause"], d["kind"], out["changed_by_reason"][0]
('feature_state', 'action', {'transition': 'allow->hold', 'reason': 'new_device', 'orders': 1})
>>> d["explanation"]
'new_device live -, replay 1; score live 0.1, replay 0.6'
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from streams.topics import partition_for
from streams.vocabulary import ACTIONS, SEVERITY
from tradeguard.replay.window import format_ms

__all__ = ["ACTIONS", "CAUSES", "DecisionComparison", "Decided", "Evidence", "STOPPED",
           "compare_controls", "order_labels"]

STOPPED = frozenset({"hold", "block"})
_SEVERITY = SEVERITY
_ACCOUNT_CODES = ("account_frozen", "account_step_up")

CAUSES = {
    "policy": "the two sides decided under different policies (policy_version)",
    "redelivered": "the live engine decided the order more than once (a restart after a "
                   "crash) and its decisions disagree",
    "halt_propagation": "the live engine decided the buy before the halt in force at its time "
                        "was published (the order -> tickers.flow -> halt round trip)",
    "halt_differs": "a buy halt was in force on one side only",
    "account_control": "a step-up or freeze was in force on one side only",
    "model_state": "the models had learned from a different history",
    "profile_timing": "the live worker decided the order before it published the ticker "
                      "profile the replay valued it with",
    "login_timing": "the live worker decided the order before it had taken in the account's "
                    "latest login events, written just before",
    "account_history": "an earlier order of the account differed, and its features carry it",
    "feature_state": "other features differ (listed per order)",
    "not_decided_live": "a recorded order with no published decision",
    "not_replayed": "a published decision whose order is not in the recording",
}

#: Signals by what they are computed from.
LOGIN_SIGNALS = frozenset({"new_device", "new_ip", "new_asn", "new_country", "new_user_agent",
                           "failed_logins_before", "session_mismatch", "shared_infra_accounts",
                           "unknown_account", "foreign_first_login"})
MODEL_SIGNALS = frozenset({"anomaly", "fraud_probability"})
#: From the ticker's profile; a market order is also valued at its last price, which moves
#: every signal computed from the order's value.
PROFILE_SIGNALS = frozenset({"thin_ticker_notional_x_adv"})
VALUE_SIGNALS = frozenset({"notional_x_usual", "liquidation_ratio"})
#: Discounted by the account's baselines, which a login folds in (features/account.py): a
#: login taken in late moves them too.
BASELINE_SIGNALS = frozenset({"liquidation_ratio", "thin_ticker_notional_x_adv"})
#: A login written this close before the live decision may not have been taken in yet.
LOGIN_RACE_MS = 1_000
#: An order is valued with the profile published this long before it (core.profiles).
PROFILE_LAG_MS = 60_000
#: How many earlier orders of a partition are searched for a race nobody saw.
HIDDEN_LOOKBACK = 5_000


@dataclass(frozen=True)
class Decided:
    """One side's decision on one order; ``reasons`` as their JSON bytes, as published."""

    order_id: str
    account_id: str
    ticker: str
    side: str
    action: str
    score: float
    reasons: bytes
    model_version: str
    policy_version: str
    order_ts: int
    decided_ms: int | None = None  # wall time the live engine published it (its ``ts``)

    @classmethod
    def from_record(cls, r: Any) -> "Decided":
        """From a decoded ``decisions`` record (``streams.wire`` struct or dict)."""
        get = r.get if isinstance(r, dict) else r.__getattribute__
        return cls(get("order_id"), get("account_id"), get("ticker"), get("side"),
                   get("action"), float(get("score")), orjson.dumps(get("reasons")),
                   get("model_version"), get("policy_version"), int(get("order_ts")),
                   get("ts"))

    def signals(self) -> dict[str, float]:
        return {r["code"]: r["value"] for r in orjson.loads(self.reasons)}

    def codes(self) -> list[str]:
        return [r["code"] for r in orjson.loads(self.reasons)]

    def same_as(self, other: "Decided", policy: bool = True) -> bool:
        """Equal decisions: action, score, reasons, model_version (and policy_version)."""
        return (self.action == other.action and self.score == other.score
                and self.reasons == other.reasons and self.model_version == other.model_version
                and (not policy or self.policy_version == other.policy_version))

    def brief(self) -> dict[str, Any]:
        out = {"action": self.action, "score": self.score,
               "reasons": orjson.loads(self.reasons), "model_version": self.model_version,
               "policy_version": self.policy_version}
        if self.decided_ms is not None:
            out["decided_at"] = format_ms(self.decided_ms)
        return out


@dataclass
class Evidence:
    """What the diagnosis may consult besides the two decisions.

    Halts are ``controls.tickers`` records (a live one with ``published_ms``, the
    Kafka timestamp it was written with); account controls are
    ``controls.accounts`` records; lists per key are in time order.
    ``live_profiles``: ticker -> [(profile ts, published_ms)] as the live worker
    wrote them to ``tickers.profile`` (empty where compaction removed them);
    ``replay_profiles``: ticker -> the profile times the replay produced;
    ``logins``: account -> [(ts, published_ms)] of its auth events;
    ``market_orders``: ids of orders without a price (valued at the last trade).
    """

    live_halts: dict[str, list[dict]] = field(default_factory=dict)
    replay_halts: dict[str, list[dict]] = field(default_factory=dict)
    live_accounts: dict[str, list[dict]] = field(default_factory=dict)
    replay_accounts: dict[str, list[dict]] = field(default_factory=dict)
    live_profiles: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    replay_profiles: dict[str, list[int]] = field(default_factory=dict)
    logins: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    market_orders: set[str] = field(default_factory=set)
    warmup_note: str = ""
    partitions: int = 1  # account partitions, for what the models of one partition learned

    @staticmethod
    def index(records: Iterable[dict], key: str) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for r in sorted(records, key=lambda r: r["ts"]):
            out[r[key]].append(r)
        return dict(out)


class DecisionComparison:
    """Feed it one side's decisions order by order (``add``); ``finish`` gives the summary.

    ``live`` maps order_id to the other side's decisions in publish order (a
    crash may have published several). Orders before ``range_start`` belong to
    the warm-up: they are compared too, so that a difference in the range can be
    traced to an earlier one (``account_history``), and summarised apart.
    ``labels`` (order_id -> fraud/legit) and ``add``'s ``notional`` feed the
    stopped-fraud and stopped-legit figures of the range. ``candidate``: this side
    decides under another policy on purpose, so a decision that differs from the
    live one only in its ``policy_version`` counts as the same.
    """

    def __init__(self, live: dict[str, list[Decided]], sides: tuple[str, str] = ("live", "replay"),
                 labels: dict[str, str] | None = None, range_start: int | None = None,
                 candidate: bool = False) -> None:
        self.live = live
        self.candidate = candidate
        self.sides = sides
        self.labels = labels or {}
        self.range_start = range_start
        self.seen: set[str] = set()
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.identical = 0
        self.warmup_compared = 0
        self.warmup_identical = 0
        self.pairs: list[tuple[list[Decided], Decided]] = []
        self.unmatched: list[Decided] = []  # decided by this side only
        self.labelled: dict[str, tuple[str | None, str, float]] = {}  # id -> (live, this, yen)
        self.duplicates = 0
        self._by_partition: dict[int, list[Decided]] | None = None

    def in_range(self, ts: int) -> bool:
        return self.range_start is None or ts >= self.range_start

    def add(self, this: Decided, notional: float = 0.0) -> None:
        """One order as this side decided it."""
        oid = this.order_id
        if oid in self.seen:
            raise ValueError(f"order {oid} decided twice by the {self.sides[1]} side")
        self.seen.add(oid)
        found = self.live.get(oid)
        in_range = self.in_range(this.order_ts)
        if in_range and oid in self.labels:
            self.labelled[oid] = (found[0].action if found else None, this.action, notional)
        if not found:
            self.unmatched.append(this)
            return
        first = found[0]
        same = (first.same_as(this, policy=not self.candidate)
                and all(first.same_as(d) for d in found[1:]))
        if in_range:
            self.transitions[(first.action, this.action)] += 1
            self.duplicates += len(found) > 1
            self.identical += same
        else:
            self.warmup_compared += 1
            self.warmup_identical += same
        if not same:
            self.pairs.append((found, this))

    def finish(self, evidence: Evidence, attribution: dict[str, str] | None = None
               ) -> dict[str, Any]:
        """The comparison as a JSON-ready dict; ``differences`` lists every one with its cause.

        ``attribution`` (order_id -> the live-policy replay's cause, or
        ``reproduced``) is added to each difference when a candidate policy is
        compared: it says whether the policy alone made the change.
        """
        a, b = self.sides
        earlier: dict[str, tuple[str, str, int]] = {}  # account -> its first difference
        partition_earlier: dict[int, tuple[str, str, int]] = {}  # the same per partition
        differences, warmup = [], []
        for found, this in sorted(self.pairs, key=lambda fp: (fp[1].order_ts, fp[1].order_id)):
            first = found[0]
            p = partition_for(this.account_id, evidence.partitions)
            cause, why = diagnose(found, this, evidence, earlier.get(this.account_id),
                                  partition_earlier.get(p) or self._hidden_race(evidence, p, this))
            earlier.setdefault(this.account_id, (this.order_id, cause, this.order_ts))
            partition_earlier.setdefault(p, (this.order_id, cause, this.order_ts))
            kind = ("action" if first.action != this.action
                    else "score" if (first.score, first.reasons) != (this.score, this.reasons)
                    else "version")
            d = {"order_id": this.order_id, "account_id": this.account_id,
                 "ticker": this.ticker, "side": this.side, "order_ts": this.order_ts,
                 "order_time": format_ms(this.order_ts), "kind": kind, "cause": cause,
                 "explanation": why, a: first.brief(), b: this.brief()}
            if len(found) > 1:
                d[f"{a}_all"] = [x.brief() for x in found]
            if attribution is not None:
                d["live_policy_replay"] = attribution.get(this.order_id, "reproduced")
            (differences if self.in_range(this.order_ts) else warmup).append(d)
        missing = [oid for oid, found in self.live.items()
                   if oid not in self.seen and self.in_range(found[0].order_ts)]
        for oid in missing:
            first = self.live[oid][0]
            differences.append({
                "order_id": oid, "account_id": first.account_id, "ticker": first.ticker,
                "side": first.side, "order_ts": first.order_ts,
                "order_time": format_ms(first.order_ts), "kind": "missing",
                "cause": "not_replayed",
                "explanation": f"published by the {a} side; the {b} side has no such order "
                               "(not in the recording, or outside the topics' retention)",
                a: first.brief(), b: None})
        only_this = [t for t in self.unmatched if self.in_range(t.order_ts)]
        for this in only_this:
            differences.append({
                "order_id": this.order_id, "account_id": this.account_id, "ticker": this.ticker,
                "side": this.side, "order_ts": this.order_ts,
                "order_time": format_ms(this.order_ts), "kind": "missing",
                "cause": "not_decided_live",
                "explanation": f"the {a} side published no decision for this recorded order "
                               "(never consumed, or its decision was lost)",
                a: None, b: this.brief()})
        differences.sort(key=lambda d: (d["order_ts"], d["order_id"]))
        kinds = Counter(d["kind"] for d in differences)
        by_reason: Counter[tuple[str, str]] = Counter()
        for found, this in self.pairs:
            first = found[0]
            if first.action != this.action and self.in_range(this.order_ts):
                stricter = this if _SEVERITY[this.action] > _SEVERITY[first.action] else first
                codes = stricter.codes()
                by_reason[(f"{first.action}->{this.action}", codes[0] if codes else "(none)")] \
                    += 1
        return {
            "sides": [a, b],
            "orders": {"compared": sum(self.transitions.values()),
                       "identical": self.identical,
                       "action_changed": kinds["action"], "score_changed": kinds["score"],
                       "version_only": kinds["version"],
                       f"only_{a}": len(missing), f"only_{b}": len(only_this),
                       f"decided_more_than_once_{a}": self.duplicates},
            "transitions": {x: {y: self.transitions[(x, y)] for y in ACTIONS} for x in ACTIONS},
            "changed_by_reason": [{"transition": t, "reason": r, "orders": n}
                                  for (t, r), n in sorted(by_reason.items(),
                                                          key=lambda kv: (-kv[1], kv[0]))],
            "causes": dict(Counter(d["cause"] for d in differences).most_common()),
            "labels": self._label_outcomes(),
            "warmup": {"compared": self.warmup_compared, "identical": self.warmup_identical,
                       "causes": dict(Counter(d["cause"] for d in warmup).most_common()),
                       "first_differences": warmup[:20]},
            "differences": differences,
        }

    def _hidden_race(self, ev: Evidence, partition: int, this: Decided
                     ) -> tuple[str, str, int] | None:
        """The latest earlier order of ``partition`` whose features raced, decision unchanged.

        A login or a profile that reached the live worker late changes features that
        the models learn from, even where the decision stayed the same (a signal too
        weak to move the rounded score, or one only the models read, like the time
        since login). The models of the partition carry it from then on.
        """
        if self._by_partition is None:
            self._by_partition = defaultdict(list)
            for found in self.live.values():
                d = found[0]
                self._by_partition[partition_for(d.account_id, ev.partitions)].append(d)
            for ds in self._by_partition.values():
                ds.sort(key=lambda d: d.order_ts)
        ds = self._by_partition.get(partition, [])
        i = bisect.bisect_left([d.order_ts for d in ds], this.order_ts)
        for d in reversed(ds[max(0, i - HIDDEN_LOOKBACK):i]):
            login = _login_timing(d, d, ev)
            if login:
                return d.order_id, f"login_timing, unseen: {login}", d.order_ts
            late, text = _profile_timing(d, d, ev)
            if late:
                return d.order_id, f"profile_timing, unseen: {text}", d.order_ts
        return None

    def _label_outcomes(self) -> dict[str, Any]:
        """Per side: labelled fraud stopped (orders, yen) and labelled legit orders stopped."""
        a, b = self.sides
        out: dict[str, Any] = {"labelled_orders": len(self.labelled)}
        for name, pick in ((a, 0), (b, 1)):
            fraud = [(v[pick], v[2]) for oid, v in self.labelled.items()
                     if self.labels[oid] == "fraud"]
            legit = [v[pick] for oid, v in self.labelled.items() if self.labels[oid] == "legit"]
            out[name] = {
                "fraud_orders": len(fraud),
                "fraud_stopped": sum(1 for act, _ in fraud if act in STOPPED),
                "fraud_yen": round(sum(yen for _, yen in fraud), 2),
                "fraud_yen_stopped": round(sum(yen for act, yen in fraud if act in STOPPED), 2),
                "legit_orders": len(legit),
                "legit_stopped": sum(1 for act in legit if act in STOPPED),
                "legit_stopped_per_10k": (round(1e4 * sum(1 for act in legit if act in STOPPED)
                                                / len(legit), 1) if legit else None),
            }
        return out


def order_labels(feedback: Iterable[Any]) -> dict[str, str]:
    """order_id -> its latest label, from ``feedback`` records (account-wide ones name no order).

    >>> from types import SimpleNamespace as L
    >>> order_labels([L(order_id="o1", label="legit", ts=5), L(order_id="o1", label="fraud", ts=9),
    ...               L(order_id=None, label="fraud", ts=7)])
    {'o1': 'fraud'}
    """
    latest: dict[str, tuple[int, str]] = {}
    for r in feedback:
        if r.order_id is not None and (r.order_id not in latest or latest[r.order_id][0] <= r.ts):
            latest[r.order_id] = (r.ts, r.label)
    return {oid: label for oid, (_, label) in latest.items()}


def diagnose(found: list[Decided], this: Decided, ev: Evidence,
             earlier: tuple[str, str, int] | None = None,
             partition_earlier: tuple[str, str, int] | None = None) -> tuple[str, str]:
    """(cause, explanation) of one difference; the causes are in the module docstring.

    ``earlier``, ``partition_earlier``: the first earlier difference (order id,
    cause, order time) of the same account, and of the same account partition.
    """
    first = found[0]
    if first.policy_version != this.policy_version:
        return "policy", (f"decided live under {first.policy_version}, replayed under "
                          f"{this.policy_version}")
    distinct = [d for i, d in enumerate(found) if all(not d.same_as(e) for e in found[:i])]
    if len(distinct) > 1:
        equal = [i + 1 for i, d in enumerate(found) if d.same_as(this)]
        return "redelivered", (
            f"published {len(found)} times live ({', '.join(d.action for d in found)}, at "
            f"{', '.join(format_ms(d.decided_ms) for d in found)}): decided again after a "
            "restart; " + (f"the replay equals decision #{equal[0]}" if equal
                           else "the replay equals none of them"))
    live_sig, sig = first.signals(), this.signals()
    if ("ticker_halted" in sig) != ("ticker_halted" in live_sig):
        return _halt_cause(first, this, ev, replay_halted="ticker_halted" in sig)
    if any((c in sig) != (c in live_sig) for c in _ACCOUNT_CODES):
        live_c = _in_force(ev.live_accounts.get(this.account_id, []), this.order_ts)
        replay_c = _in_force(ev.replay_accounts.get(this.account_id, []), this.order_ts)
        return "account_control", (
            f"account {this.account_id} at the order's time: live {_control_words(live_c)}; "
            f"replay {_control_words(replay_c)}")
    note = f" ({ev.warmup_note})" if ev.warmup_note else ""
    if first.model_version != this.model_version:
        return "model_state", (f"models live {first.model_version}, replay "
                               f"{this.model_version}{note}")
    differ = {c for c in set(sig) | set(live_sig) if sig.get(c) != live_sig.get(c)}
    words = _signal_words(differ, live_sig, sig) or "no named signal differs (each under the "
    words = words if differ else words + "risk a reason needs)"
    valued = PROFILE_SIGNALS | (VALUE_SIGNALS if this.order_id in ev.market_orders else set())
    # A login or a profile that came late moves its own signals first; the models (which
    # read every feature) and the ranking of reasons follow.
    if differ & (LOGIN_SIGNALS | BASELINE_SIGNALS) or not differ:
        found_login = _login_timing(first, this, ev)
        if found_login:
            return "login_timing", f"{words}: {found_login}"
    profile_note = ""
    if differ & valued or not differ:
        late, profile_note = _profile_timing(first, this, ev)
        if late:
            return "profile_timing", f"{words}: {profile_note}"
        profile_note = f"; {profile_note}"
    if earlier is not None:
        oid, cause, ts = earlier
        return "account_history", (f"{words}; the account's order {oid} ({format_ms(ts)}) "
                                   f"differed before ({cause})")
    if differ and differ <= MODEL_SIGNALS and partition_earlier is not None:
        oid, cause, ts = partition_earlier
        return "model_state", (f"{words}, with the same model_version: this partition's "
                               f"models learned from its order {oid} ({format_ms(ts)}), whose "
                               f"features differed ({cause}){note}")
    return "feature_state", (f"{words}; score live {first.score}, replay {this.score}"
                             f"{profile_note}{note}")


def _signal_words(codes: set[str], live: dict[str, float], replay: dict[str, float]) -> str:
    """``anomaly live 0.62, replay 0.71; new_device live -, replay 1``."""
    def value(side: dict[str, float], c: str) -> str:
        return f"{side[c]:g}" if c in side else "-"

    return "; ".join(f"{c} live {value(live, c)}, replay {value(replay, c)}"
                     for c in sorted(codes))


def _profile_timing(live: Decided, this: Decided, ev: Evidence) -> tuple[bool, str]:
    """(the live worker had not published the replay's profile when it decided, the evidence)."""
    cutoff = this.order_ts - PROFILE_LAG_MS
    replay_times = ev.replay_profiles.get(this.ticker, [])
    i = bisect.bisect_right(replay_times, cutoff)
    used = replay_times[i - 1] if i else None
    published = dict(ev.live_profiles.get(this.ticker, []))
    if used is None:
        return False, f"the replay had no {this.ticker} profile from before {format_ms(cutoff)}"
    if used not in published or live.decided_ms is None:
        return False, (f"the replay valued it with the {this.ticker} profile of the period "
                       f"ending {format_ms(used)}, which the live worker's tickers.profile "
                       "no longer holds (compacted) or never published")
    # Milliseconds on both sides: one published in the same millisecond as the decision may
    # have come just after it (it did, if the profile signals differ).
    gap = published[used] - live.decided_ms
    had = [t for t, at in ev.live_profiles.get(this.ticker, [])
           if t <= cutoff and at < live.decided_ms]
    when = (f"{gap} ms after deciding the order" if gap > 0
            else "in the millisecond it decided the order" if gap == 0
            else f"{-gap} ms before deciding the order")
    text = (f"the replay valued the order with the {this.ticker} profile of the period ending "
            f"{format_ms(used)}; the live worker published it {when}")
    if gap < 0:
        return False, text
    return True, (text + " and valued it with "
                  + (f"the one ending {format_ms(max(had))}" if had else "no profile")
                  + " (it closes a ticker partition's period when that partition sees a "
                    "later trade)")


def _login_timing(live: Decided, this: Decided, ev: Evidence) -> str | None:
    """Evidence that the account's latest auth events were written just before the decision."""
    events = ev.logins.get(this.account_id, [])
    i = bisect.bisect_right(events, (this.order_ts, float("inf")))
    if not i or live.decided_ms is None:
        return None
    ts, written = events[i - 1]
    before = live.decided_ms - written
    if before >= LOGIN_RACE_MS:
        return None
    return (f"the account's auth event at {format_ms(ts)} was written to auth.events {before} ms "
            "before the live worker decided the order")


def _halt_cause(live: Decided, this: Decided, ev: Evidence, replay_halted: bool
                ) -> tuple[str, str]:
    ticker, ts = this.ticker, this.order_ts
    live_halt = _halt_at(ev.live_halts.get(ticker, []), ts)
    replay_halt = _halt_at(ev.replay_halts.get(ticker, []), ts)
    if replay_halted and live_halt is not None:
        published = live_halt.get("published_ms")
        trigger = (live_halt.get("evidence") or {}).get("trigger_order_id")
        if published is not None and live.decided_ms is not None and published > live.decided_ms:
            return "halt_propagation", (
                f"the halt on {ticker} raised at {format_ms(live_halt['ts'])} (event time, "
                f"trigger order {trigger}) was published {published - live.decided_ms} ms after "
                f"the live engine decided this buy ({format_ms(ts)})")
        return "halt_differs", (
            f"the live halt on {ticker} (raised at {format_ms(live_halt['ts'])}, published "
            f"{format_ms(published)}) was published before this buy was decided live, "
            "yet not applied to it")
    if replay_halted:
        return "halt_differs", (f"the replay halted {ticker} at "
                                f"{format_ms(replay_halt['ts']) if replay_halt else '?'}; "
                                "the live engine had no halt on it then")
    source = (live_halt or {}).get("source", "engine")
    return "halt_differs", (f"the live engine had a halt on {ticker} in force (raised at "
                            f"{format_ms((live_halt or {}).get('ts'))}, source {source}); "
                            "the replay had none then")


def _halt_at(halts: list[dict], ts: int) -> dict | None:
    """The halt in force at ``ts`` among ``halts`` (ticker controls in time order)."""
    i = bisect.bisect_right([h["ts"] for h in halts], ts)
    for h in reversed(halts[:i]):
        if h["action"] != "halt_buys":
            return None  # released
        expires = h.get("expires_at")
        return h if expires is None or ts < expires else None
    return None


def _in_force(controls: list[dict], ts: int) -> dict | None:
    i = bisect.bisect_right([c["ts"] for c in controls], ts)
    return controls[i - 1] if i and controls[i - 1]["action"] != "release" else None


def _control_words(c: dict | None) -> str:
    if c is None:
        return "no control"
    return f"{c['action']} since {format_ms(c['ts'])} (source {c.get('source') or '?'})"


def compare_controls(live: list[dict], replay: list[dict], key: str,
                     sides: tuple[str, str] = ("live", "replay")) -> dict[str, Any]:
    """Controls each side raised, paired per (key, action) in time order.

    Each pair is ``same`` (equal time) or ``moved`` (with the shift in ms, and
    ``trigger``, the order that raised it on the second side); what
    one side has beyond the other's count is ``added`` (replay only) or
    ``removed`` (live only). Releases are paired too. ``by_reason`` counts the
    added and removed ones per action and the reason they carry (the top reason
    code of the triggering order, ``label`` for a feedback control, or the
    reason text of a halt).

    >>> live = [{"ticker": "T", "action": "halt_buys", "ts": 100, "reason": "x"}]
    >>> replay = [{"ticker": "T", "action": "halt_buys", "ts": 160, "reason": "x"},
    ...           {"ticker": "U", "action": "halt_buys", "ts": 50, "reason": "y"}]
    >>> out = compare_controls(live, replay, "ticker")
    >>> out["counts"], out["moved"][0]["shift_ms"]
    ({'live': 1, 'replay': 2, 'same': 0, 'moved': 1, 'added': 1, 'removed': 0}, 60)
    """
    a, b = sides
    groups: dict[tuple[str, str], tuple[list[dict], list[dict]]] = defaultdict(lambda: ([], []))
    for side, records in ((0, live), (1, replay)):
        for r in sorted(records, key=lambda r: r["ts"]):
            groups[(r[key], r["action"])][side].append(r)
    same, moved, added, removed = [], [], [], []
    for (k, action), (xs, ys) in sorted(groups.items()):
        for x, y in zip(xs, ys):
            entry = {key: k, "action": action, f"{a}_ts": x["ts"], f"{b}_ts": y["ts"],
                     f"{a}_time": format_ms(x["ts"]), f"{b}_time": format_ms(y["ts"]),
                     "trigger": _trigger(y), f"{a}_trigger": _trigger(x)}
            if x["ts"] == y["ts"]:
                same.append(entry)
            else:
                moved.append({**entry, "shift_ms": y["ts"] - x["ts"]})
        removed += [_control_entry(x, key) for x in xs[len(ys):]]
        added += [_control_entry(y, key) for y in ys[len(xs):]]
    by_reason: Counter[tuple[str, str, str]] = Counter()
    for change, entries in (("added", added), ("removed", removed)):
        for e in entries:
            by_reason[(change, e["action"], e["reason"])] += 1
    return {"counts": {a: len(live), b: len(replay), "same": len(same), "moved": len(moved),
                       "added": len(added), "removed": len(removed)},
            "same": same, "moved": moved, "added": added, "removed": removed,
            "by_reason": [{"change": c, "action": act, "reason": r, "count": n}
                          for (c, act, r), n in sorted(by_reason.items())]}


def _control_entry(r: dict, key: str) -> dict[str, Any]:
    evidence = r.get("evidence") or {}
    reasons = evidence.get("reasons") or []
    if r.get("source") == "feedback":
        why = "label"
    elif reasons:
        why = reasons[0]["code"]
    elif r["action"] == "release":
        why = r.get("reason") or "release"
    else:
        why = "risky buyers" if r["action"] == "halt_buys" else (r.get("reason") or "?")
    return {key: r[key], "action": r["action"], "ts": r["ts"], "time": format_ms(r["ts"]),
            "source": r.get("source"), "reason": why, "detail": r.get("reason"),
            "trigger": _trigger(r)}


def _trigger(r: dict) -> str | None:
    """The order that raised a control (a halt's trigger, a step-up's or freeze's order)."""
    evidence = r.get("evidence") or {}
    return evidence.get("trigger_order_id") or evidence.get("order_id")
