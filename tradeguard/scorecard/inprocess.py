"""The closed-loop scorecard in one process: simulated streams, the engine, the world's answers.

    session.records --+                      +--> decisions, controls --> score (engine, baselines)
                      +--> merge (event time) --> InProcessEngine
    answers, labels --+            ^                       |
                                   +-- customers, analysts <+   (tradeguard/simulator/responses.py)

No broker and no wall clock: the session's records and the answers the
responders inject are merged in event time and fed to ``InProcessEngine`` in
slices of at most ``slice_ms`` of event time; after each slice the responders
read what the engine published and schedule their answers. The same scenario,
seed and policy give the same report, number for number (a test holds it).

``tradeguard scorecard`` runs scenario files at the reporting seeds and prints
one table; ``tradeguard evaluate --in-process`` writes the broker mode's report
without a broker.
"""

from __future__ import annotations

import dataclasses
import heapq
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TextIO

import orjson

from streams.topics import AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS, FEEDBACK
from tradeguard.core import InProcessEngine
from tradeguard.policy.config import PolicyConfig
from tradeguard.scorecard.baselines import run_baselines
from tradeguard.scorecard.engine import engine_outcome
from tradeguard.scorecard.outcome import Outcome, session_orders
from tradeguard.scorecard.plots import PlotsUnavailable, write_plots
from tradeguard.scorecard.report import build_report, fmt_share, write_report
from tradeguard.scorecard.score import score
from tradeguard.simulator import Session, generate, load_scenario
from tradeguard.simulator.responses import AnalystDesk, CustomerResponses, Review
from tradeguard.simulator.scenario import ResponsesConfig

__all__ = ["BEATS", "InProcessResult", "REPORTING_SEEDS", "TUNING_SEEDS", "evaluate_in_process",
           "run_in_process", "scorecard", "scorecard_table"]

#: Seeds the figures are reported on. Nobody tunes the engine on them: tune on TUNING_SEEDS.
#: Each pair, once its figures are published, counts as seen: 303 and 404, then 505 and
#: 606 (issue 10), 707 and 808 (issues 10 to 14), 9101 and 9202 (issue 23's filing), 9313
#: and 9424 (stop 29); 9535 and 9646 were chosen at the end of the strangers' work (8
#: December 2026), which tuned on 101 and 202 only.
REPORTING_SEEDS = (9535, 9646)
#: Seeds for tuning (or already seen), besides each scenario file's own ``seed``.
TUNING_SEEDS = (101, 202, 303, 404, 505, 606, 707, 808, 9101, 9202, 9313, 9424)

#: Baselines the engine must be ahead of (``no_engine`` stops nothing: it is the floor).
COMPARED = ("static_rules_2025", "river_anomaly")
#: What one legitimate order held or blocked costs, in yen of fraud let through: a
#: customer's trade delayed, a call to support, some trust. The policy was tuned to it
#: (tradeguard/policy/default.toml).
FALSE_HOLD_COST_YEN = 50_000
BEATS = ("ahead of a baseline: better on both fraud yen stopped and legitimate orders stopped, "
         "or, where each is better on one, a lower cost: fraud yen let through plus "
         f"{FALSE_HOLD_COST_YEN:,} yen per legitimate order held or blocked (on a scenario with "
         "no attack: fewer legitimate stops). Compared with static_rules_2025 and "
         "river_anomaly; no_engine, which stops nothing, is the floor.")


@dataclass
class InProcessResult:
    """What the engine published on one session, and what the world answered it."""

    session: Session
    responses: ResponsesConfig
    partitions: int = 4
    decisions: list[dict[str, Any]] = field(default_factory=list)
    ticker_controls: list[dict[str, Any]] = field(default_factory=list)
    account_controls: list[dict[str, Any]] = field(default_factory=list)
    injected: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    scripted_feedback_left_out: int = 0
    answers_clamped: int = 0
    pending_at_end: int = 0
    reviews_mislabelled: int = 0
    step_ups_unanswered: int = 0

    def outcome(self) -> Outcome:
        return engine_outcome(self.decisions, self.ticker_controls, self.account_controls)

    @property
    def first_label_ts(self) -> int | None:
        return next((r["ts"] for t, r in self.injected if t == FEEDBACK), None)

    def summary(self) -> dict[str, Any]:
        """Counts of what was injected, for the report's ``run`` section."""
        auth = [r["event"] for t, r in self.injected if t == AUTH_EVENTS]
        labels = [r["label"] for t, r in self.injected if t == FEEDBACK]
        return {"mode": "in-process", "partitions": self.partitions,
                "decisions": len(self.decisions),
                "ticker_controls": len(self.ticker_controls),
                "account_controls": len(self.account_controls),
                "responses": dataclasses.asdict(self.responses),
                "step_up_answers": {e: auth.count(e) for e in sorted(set(auth))},
                "step_ups_unanswered": self.step_ups_unanswered,
                "analyst_labels": {x: labels.count(x) for x in sorted(set(labels))},
                "analyst_labels_wrong": self.reviews_mislabelled,
                "first_label_ts": self.first_label_ts,
                "scripted_feedback_left_out": self.scripted_feedback_left_out,
                "answers_clamped": self.answers_clamped,
                "due_after_the_last_record": self.pending_at_end}


def run_in_process(session: Session, responses: ResponsesConfig | None = None,
                   policy: PolicyConfig | None = None, partitions: int = 4,
                   slice_ms: int = 1_000) -> InProcessResult:
    """The session through ``InProcessEngine`` in event time, answered by customers and analysts.

    ``responses`` defaults to every key's default (customers and analysts on).
    With analysts on, the generator's scripted ``feedback`` is left out: the
    analysts label what the engine actually stopped instead. Answers that fall
    due after the session's last record are not fed (nothing is left for them
    to change); ``pending_at_end`` counts them.
    """
    cfg = responses or ResponsesConfig()
    result = InProcessResult(session, cfg, partitions)
    records = session.records
    if cfg.analysts:
        records = [(t, r) for t, r in records if t != FEEDBACK]
        result.scripted_feedback_left_out = len(session.records) - len(records)
    customers = CustomerResponses(session, cfg) if cfg.customers else None
    desk = AnalystDesk(session, cfg) if cfg.analysts else None
    engine = InProcessEngine(policy, partitions)
    # (event ts, when it fell due, sequence, item): an item is (topic, record) or a Review.
    pending: list[tuple[int, int, int, Any]] = []
    seq, fed_ts, i, n = 0, -1, 0, len(records)

    def schedule(ts: int, due: int, item: Any) -> None:
        # The engine has already been fed records up to fed_ts: an answer wanted
        # earlier (a delay shorter than a slice) is fed at fed_ts, never before
        # what came in ahead of it, so the stream stays in event-time order.
        nonlocal seq
        if ts < fed_ts:
            result.answers_clamped += 1
            ts = fed_ts
        heapq.heappush(pending, (ts, due, seq, item))
        seq += 1

    while i < n:
        end = (min(records[i][1]["ts"], pending[0][0] if pending else records[i][1]["ts"])
               // slice_ms + 1) * slice_ms
        batch = []
        while True:
            next_record = records[i][1]["ts"] if i < n else None
            next_answer = pending[0][0] if pending else None
            # At equal event time the session's own records go first.
            if next_answer is not None and next_answer < end and (
                    next_record is None or next_answer < next_record):
                ts, due, _, item = heapq.heappop(pending)
                if isinstance(item, Review):
                    labelled = desk.review(item, ts)
                    if isinstance(labelled, int):  # every analyst busy: wait in line
                        schedule(labelled, due, item)
                        continue
                    item = labelled
                batch.append(item)
                result.injected.append(item)
            elif next_record is not None and next_record < end:
                batch.append(records[i])
                i += 1
            else:
                break
            fed_ts = batch[-1][1]["ts"]
        for out in engine.run(batch):
            rows = out.decisions.rows()
            result.decisions += rows
            result.ticker_controls += out.ticker_controls
            result.account_controls += out.account_controls
            if customers is not None:
                for name, record in customers.answer(out.account_controls):
                    schedule(record["ts"], record["ts"], (name, record))
            if desk is not None:
                for review in desk.queue(rows, out.account_controls):
                    schedule(review.due_ts, review.due_ts, review)
    result.pending_at_end = len(pending)
    result.step_ups_unanswered = customers.silent if customers is not None else 0
    result.reviews_mislabelled = desk.mislabelled if desk is not None else 0
    return result


def _report(session: Session, description: str, result: InProcessResult,
            baselines: dict[str, tuple[Outcome, str]] | None = None) -> dict[str, Any]:
    """``build_report`` for an in-process run: no broker, no wall clock, no latency."""
    return build_report(
        session, description, result.outcome(),
        run_baselines(session) if baselines is None else baselines,
        latency={"orders": 0, "p50": None, "p99": None, "max": None, "mean": None,
                 "not_applicable": "decided in process, in event time: order-to-decision "
                                   "latency is measured in broker mode (tradeguard evaluate) "
                                   "and in benchmarks/"},
        run=result.summary(),
        halts=result.ticker_controls, first_label_ts=result.first_label_ts)


def evaluate_in_process(scenario_path: str | Path, out_dir: str | Path,
                        policy: PolicyConfig | None = None, seed: int | None = None,
                        out: TextIO | None = None) -> dict[str, Any]:
    """``tradeguard evaluate --in-process``: the report of broker mode, decided in process.

    Writes ``report.json``, ``report.md``, the plots, ``truth.json`` and every
    record the engine published plus the answers fed back to it
    (``engine-records.jsonl``) to ``out_dir``; returns the report.
    """
    out = sys.stderr if out is None else out
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario(scenario_path)
    if seed is not None:
        scenario = dataclasses.replace(scenario, seed=seed)
    session = generate(scenario)
    session.truth.write(out_dir / "truth.json")
    print(f"evaluate: scenario {scenario.name!r} seed {scenario.seed}, in process: "
          f"{session.counts()}", file=out, flush=True)
    result = run_in_process(session, scenario.responses, policy)
    with open(out_dir / "engine-records.jsonl", "wb") as f:
        for name, records in ((DECISIONS, result.decisions),
                              (CONTROLS_TICKERS, result.ticker_controls),
                              (CONTROLS_ACCOUNTS, result.account_controls)):
            f.writelines(orjson.dumps({"topic": name, "record": r}) + b"\n" for r in records)
        f.writelines(orjson.dumps({"topic": t, "record": r, "injected": True}) + b"\n"
                     for t, r in result.injected)
    report = _report(session, scenario.description, result)
    try:
        report["plots"] = write_plots(session, report, result.outcome(), out_dir)
    except PlotsUnavailable as exc:
        report["plots_skipped"] = str(exc)
    write_report(report, out_dir)
    return report


def _verdict(engine: dict[str, Any], base: dict[str, Any]) -> str:
    """``ahead``, ``even`` or ``behind`` (see BEATS) on the orders sections of two scorecards."""
    e_fraud, b_fraud = engine["fraud_yen_stopped_share"], base["fraud_yen_stopped_share"]
    e_legit = engine["legit_stopped_per_10k"] or 0.0
    b_legit = base["legit_stopped_per_10k"] or 0.0
    if e_fraud is None:  # no attack: only the legitimate stops count
        return "ahead" if e_legit < b_legit else "even" if e_legit == b_legit else "behind"
    if e_fraud == b_fraud and e_legit == b_legit:
        return "even"
    if e_fraud >= b_fraud and e_legit <= b_legit:
        return "ahead"
    if e_fraud <= b_fraud and e_legit >= b_legit:
        return "behind"
    e_cost, b_cost = _cost(engine), _cost(base)
    return "ahead" if e_cost < b_cost else "even" if e_cost == b_cost else "behind"


def _cost(orders: dict[str, Any]) -> float:
    """Fraud yen let through plus FALSE_HOLD_COST_YEN per legitimate order stopped."""
    missed = orders["fraud_yen_attempted"] - orders["fraud_yen_stopped"]
    return missed + FALSE_HOLD_COST_YEN * (orders["legit_held"] + orders["legit_blocked"])


def scorecard(paths: Iterable[str | Path], seeds: Iterable[int] = REPORTING_SEEDS,
              policy: PolicyConfig | None = None, out: TextIO | None = None) -> list[dict]:
    """Every scenario file at every seed, in process and closed loop: one row each.

    A row holds the scenario, the seed, the engine's scorecard, each baseline's,
    the responders' summary and the verdict against each compared baseline.
    """
    out = sys.stderr if out is None else out
    rows = []
    for path in paths:
        base = load_scenario(path)
        for seed in seeds:
            started = time.monotonic()
            session = generate(dataclasses.replace(base, seed=seed))
            result = run_in_process(session, base.responses, policy)
            orders = session_orders(session.records, session.open_ms)
            engine = score(orders, session.truth, result.outcome(), result.first_label_ts)
            baselines = {name: score(orders, session.truth, o)
                         for name, (o, _) in run_baselines(session).items()}
            rows.append({"scenario": str(path), "name": base.name, "seed": seed,
                         "engine": engine, "baselines": baselines, "run": result.summary(),
                         "verdicts": {b: _verdict(engine["orders"], baselines[b]["orders"])
                                      for b in COMPARED}})
            print(f"scorecard: {path} seed {seed}: {len(orders)} session orders, "
                  f"{time.monotonic() - started:.1f} s", file=out, flush=True)
    return rows


_COLUMNS = ("scenario", "seed", "fraud yen stopped", "legit held / blocked per 10k",
            "legit stopped per 10k, clean accounts (stopped / orders, 95% CI)",
            "false halts", "targets halted before 3rd hijacked buyer",
            "hijacked stepped up / frozen before 1st fraud order / buy",
            "false account actions per 1k active (actions / active)", "ahead of baselines")


def _clean_rate(o: dict) -> str:
    """``2.1 (21 / 100,000; 1.37-3.21)``: the rate, its counts and its 95% Wilson interval."""
    rate = o["legit_stopped_per_10k_clean_accounts"]
    if rate is None:
        return "—"
    low, high = o["legit_stopped_per_10k_clean_accounts_ci95"]
    return (f"{rate:g} ({o['legit_stopped_clean_accounts']} / {o['legit_clean_accounts']:,}; "
            f"{low:g}-{high:g})")


def scorecard_table(rows: list[dict], definitions: bool = False) -> str:
    """One Markdown table, a row per scenario and seed; ``definitions``: what the columns mean."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        o, t, a = (row["engine"][k] for k in ("orders", "tickers", "accounts"))
        behind = [f"{'behind' if v == 'behind' else 'even with'} {b}"
                  for b, v in row["verdicts"].items() if v != "ahead"]
        lines.append("| " + " | ".join([
            row["name"], str(row["seed"]), fmt_share(o["fraud_yen_stopped_share"]),
            f"{o['legit_held_per_10k']:g} / {o['legit_blocked_per_10k']:g}",
            _clean_rate(o),
            str(t["false_halt_count"]),
            f"{t['targeted_halted_before_third_account_buy']}/{t['targeted_count']}"
            if t["targeted_count"] else "—",
            f"{fmt_share(a['stopped_before_first_fraud_order_share'])} / "
            f"{fmt_share(a['stopped_before_first_fraud_buy_share'])}",
            "—" if a["false_account_actions_per_1k_active"] is None
            else f"{a['false_account_actions_per_1k_active']:g} "
                 f"({a['false_account_actions']} / {a['active_accounts']:,})",
            "yes" if not behind else "no: " + ", ".join(behind)]) + " |")
    if definitions:
        lines += ["", "- Decided in process, closed loop: customers answer step-ups and analysts "
                  "label what the engine stopped (`[responses]`, scenarios/README.md).",
                  "- Fraud yen stopped: fraudulent orders held or blocked, by yen. Legitimate: "
                  "orders of neither a hijacked account's attacker nor an accomplice.",
                  "- False halts: halts of tickers not under attack, or issued before the "
                  "attack on them began.",
                  "- Targets halted before the 3rd hijacked buyer: a halt issued at or after "
                  "the campaign start, at or before the first buy of the third hijacked account "
                  "buying the ticker (of the last, if fewer bought it).",
                  "- Clean accounts: legitimate orders of accounts no attacker took over; the "
                  "other legitimate orders are the owners' own on a hijacked account, stopped "
                  "with it (frozen after its takeover).",
                  "- Active accounts: accounts with at least one session order.",
                  "- Intervals: 95% Wilson score intervals of the per-10k rate, from the counts "
                  "shown (stopped / legitimate orders of clean accounts).",
                  f"- {BEATS[0].upper()}{BEATS[1:]}",
                  f"- Reporting seeds {', '.join(map(str, REPORTING_SEEDS))}; tuning seeds: "
                  f"each file's own seed and {', '.join(map(str, TUNING_SEEDS))}."]
    return "\n".join(lines) + "\n"
