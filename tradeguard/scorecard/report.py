"""The report: one dict (``report.json``) and the same numbers as tables (``report.md``).

>>> fmt_share(2 / 3), fmt_yen(163_205_102.0), fmt_share(None)
('66.7%', '¥163.2M', '—')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tradeguard.scorecard.outcome import Outcome, session_orders
from tradeguard.scorecard.score import score, threshold_curve
from tradeguard.simulator.generate import Session

__all__ = ["build_report", "fmt_share", "fmt_yen", "markdown", "write_report"]

#: How the time of a control is placed in event time, and what "stopped" means.
DEFINITIONS = (
    "An order is stopped when the decision is hold or block: the gateway waits for the "
    "decision, so it never executes. Undecided orders count as allowed.",
    "Accomplices' orders (manipulation, not unauthorized) are neither fraudulent nor "
    "legitimate; they are counted apart.",
    "Controls carry wall-clock time, decisions the order's event time. An account control "
    "the engine raised on an order takes effect at that order's event time; any other "
    "control (a halt, a freeze from a label) at the earliest event time among the orders "
    "decided at or after it (the first order it could change).",
    "Time to halt: the first halt_buys issued at or after the campaign start, minus the "
    "campaign start (and minus the first fraudulent buy), in event time; fraudulent buys to "
    "halt: the campaign's pump buys of that ticker in between (null: never halted). A halt "
    "issued earlier is no catch; issued before the attack began, it is a false halt.",
    "Halted before the 3rd hijacked buyer: that halt came at or before the first buy of the "
    "third hijacked account buying the ticker (of the last, if fewer bought it).",
    "False account actions per 1,000 active accounts: accounts neither taken over nor an "
    "accomplice's that were stepped up, frozen or refused a login during the session (the "
    "warm-up's counted apart), per 1,000 accounts with at least one session order. A release "
    "(a step-up passed) ends a stop: a taken-over account counts as stopped before its first "
    "fraudulent buy only if a stop was in force at that buy.",
    "A taken-over account is stopped before its first fraudulent buy when a step-up, freeze "
    "or refused login took effect at or before that buy.",
    "Latency: decision ts (engine wall clock) minus the wall time the order was produced, "
    "over the session's orders.",
)


def build_report(session: Session, description: str, engine: Outcome,
                 baselines: dict[str, tuple[Outcome, str]], latency: dict[str, Any],
                 run: dict[str, Any], halts: list[dict[str, Any]],
                 first_label_ts: int | None = None) -> dict[str, Any]:
    """The scorecard of the engine and of every baseline on one session.

    ``first_label_ts``: when the engine got its first analyst label (closed-loop
    runs), for the legitimate-stop curve.
    """
    orders = session_orders(session.records, session.open_ms)
    truth = session.truth
    raw_halts = [h for h in halts if h["action"] == "halt_buys"]  # engine.halts, in order
    return {
        "scenario": {"name": session.scenario, "description": description, "seed": session.seed,
                     "open_ts": session.open_ms, "close_ts": session.close_ms,
                     "records": session.counts(), "session_orders": len(orders)},
        "run": run,
        **score(orders, truth, engine, first_label_ts),
        "latency": latency,
        "engine_halts": [{"ticker": h["ticker"], "ts": h["ts"], "event_ts": e.ts,
                          "reason": h["reason"], "targeted": h["ticker"] in truth.targeted_tickers}
                         for h, e in zip(raw_halts, engine.halts)],
        "threshold_curve": {name: threshold_curve(o.scores, orders, truth)
                            for name, o in [("engine", engine)] + [
                                (n, o) for n, (o, _) in baselines.items()] if o.scores},
        "baselines": {name: {"assumptions": words, **score(orders, truth, o)}
                      for name, (o, words) in baselines.items()},
        "definitions": list(DEFINITIONS),
        "plots": [],
    }


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in ``out_dir``."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    md_path.write_text(markdown(report))
    return json_path, md_path


def fmt_share(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def fmt_yen(x: float | None) -> str:
    return "—" if x is None else f"¥{x / 1e6:,.1f}M"


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.2f}".rstrip("0").rstrip(".")
    if isinstance(x, dict):
        return ", ".join(f"{k} {v}" for k, v in x.items()) or "none"
    return str(x)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows] + [""])


_ORDER_ROWS = (
    ("fraudulent orders", "fraudulent", _fmt),
    ("fraudulent stopped (held or blocked)", "fraud_stopped", _fmt),
    ("fraudulent stopped, share", "fraud_stopped_share", fmt_share),
    ("fraudulent yen attempted", "fraud_yen_attempted", fmt_yen),
    ("fraudulent yen stopped", "fraud_yen_stopped", fmt_yen),
    ("fraud_yen_stopped_share", "fraud_yen_stopped_share", fmt_share),
    ("legitimate orders", "legitimate", _fmt),
    ("legitimate held per 10,000", "legit_held_per_10k", _fmt),
    ("legitimate blocked per 10,000", "legit_blocked_per_10k", _fmt),
    ("legitimate stopped, by scenario", "legit_stopped_by_negative", _fmt),
    ("accomplice orders stopped", "accomplice_stopped", _fmt),
    ("undecided orders", "undecided", _fmt),
)
_ACCOUNT_ROWS = (
    ("accounts taken over", "taken_over", _fmt),
    ("... of which bought fraudulently", "with_fraud_buys", _fmt),
    ("stopped before first fraudulent buy", "stopped_before_first_fraud_buy", _fmt),
    ("stopped before first fraudulent buy, share", "stopped_before_first_fraud_buy_share",
     fmt_share),
    ("stopped before first fraudulent order, share", "stopped_before_first_fraud_order_share",
     fmt_share),
    ("taken-over accounts stopped at any time", "taken_over_stopped_ever", _fmt),
    ("false account actions", "false_account_actions", _fmt),
    ("false account actions per 1,000 active accounts", "false_account_actions_per_1k_active",
     _fmt),
    ("false account actions in the warm-up (apart)", "false_account_actions_in_warmup", _fmt),
    ("false account actions, by scenario", "false_account_actions_by_negative", _fmt),
)


def _closed_loop(run: dict[str, Any]) -> str:
    """What the world answered in an in-process run, in one sentence."""
    r = run["responses"]
    return (f"Decided in process in event time ({run['partitions']} partitions), closed loop: "
            f"step-ups answered {_fmt(run['step_up_answers'])} ({run['step_ups_unanswered']} "
            f"unanswered; factor {r['factor']}); analyst labels {_fmt(run['analyst_labels'])} "
            f"({run['analyst_labels_wrong']} wrong), {run['scripted_feedback_left_out']} scripted "
            f"simulator labels left out; {run['due_after_the_last_record']} answers fell due "
            "after the last record.")


def _after_first_buy(x: dict[str, Any]) -> str:
    s = x["seconds_first_fraud_buy_to_halt"]
    return "" if s is None else f" ({s:,.0f} s after the first fraudulent buy)"


def _curve(orders: dict[str, Any]) -> list[str]:
    """The engine's legitimate stops per hour, and whether labels made them fall."""
    never = orders["legit_curve_never_rises_after_labels"]
    verdict = ("no hour to compare with the one before it after the first analyst label"
               if never is None else
               "never rose after the first label" if never else "ROSE after the first label")
    return ["## Legitimate orders stopped, hour by hour (engine)", "",
            f"Per 10,000 legitimate orders; {verdict}.", ""] + _table(
        ["hour", "legitimate orders", "stopped", "per 10,000"],
        [[str(c["hour"]), str(c["legitimate"]), str(c["stopped"]), _fmt(c["stopped_per_10k"])]
         for c in orders["legit_stop_curve"]])


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables: the engine beside every baseline."""
    sc, run = report["scenario"], report["run"]
    columns = {"engine": report, **report["baselines"]}
    header = ["", *columns]
    speed = "full speed" if run.get("speed") is None else f"{run['speed']:g}x"
    out = [f"# Detection scorecard: {sc['name']}", "", sc["description"] or "", "",
           f"Seed {sc['seed']}; records {_fmt(sc['records'])}; {sc['session_orders']} orders in "
           "the session. " + (_closed_loop(run) if run.get("mode") == "in-process" else
           f"Engine run: broker {run.get('broker')}, {run.get('partitions')} "
           f"partitions, session replayed at {speed} in {run.get('session_wall_s')} s "
           f"({run.get('total_wall_s')} s in all)."), ""]
    out += ["## Orders", ""] + _table(header, [
        [label] + [fn(c["orders"][key]) for c in columns.values()]
        for label, key, fn in _ORDER_ROWS])
    out += ["## Targeted tickers", "",
            "Seconds and fraudulent buys from campaign start to the first buy halt.", ""]
    rows = []
    for ticker, t in report["tickers"]["targeted"].items():
        cells = []
        for c in columns.values():
            x = c["tickers"]["targeted"][ticker]
            cells.append(("never" if x["seconds_to_halt"] is None
                          else f"{x['seconds_to_halt']:,.0f} s / {x['fraud_buys_to_halt']} buys"
                          + _after_first_buy(x)
                          + (" (after the close)" if x["halt_ts"] > sc["close_ts"] else ""))
                         + ("; before the 3rd hijacked buyer"
                            if x["halted_before_third_account_buy"] else "")
                         + ("; a halt issued before the attack was in force"
                            if x["before_attack"] else ""))
        rows.append([f"{ticker} ({t['tier']}, {t['campaign']}, {t['fraud_buys_total']} "
                     "fraudulent buys)"] + cells)
    out += _table(["ticker", *columns], rows)
    out += ["Halts of tickers not under attack (or issued before the attack on them):", ""]
    out += _table(["detector", "false halts", "tickers (scenario)"], [
        [name, str(c["tickers"]["false_halt_count"]),
         ", ".join(f"{h['ticker']} ({h['negative'] or 'routine'})"
                   for h in c["tickers"]["false_halts"]) or "none"]
        for name, c in columns.items()])
    out += ["## Taken-over accounts", ""] + _table(header, [
        [label] + [fn(c["accounts"][key]) for c in columns.values()]
        for label, key, fn in _ACCOUNT_ROWS])
    out += _curve(report["orders"])
    lat = report["latency"]
    out += ["## Latency", "", f"Not measured: {lat['not_applicable']}." if "not_applicable" in lat
            else f"Order to decision over {lat['orders']} session orders: "
            f"p50 {_fmt(lat['p50'])} ms, p99 {_fmt(lat['p99'])} ms, max {_fmt(lat['max'])} ms.", ""]
    if report["engine_halts"]:
        out += ["## Engine halts", ""] + _table(["ticker", "attacked", "event time", "reason"], [
            [h["ticker"], "yes" if h["targeted"] else "no",
             f"t+{(h['event_ts'] - sc['open_ts']) / 1000:,.0f} s", h["reason"]]
            for h in report["engine_halts"]])
    out += ["## Baselines", ""] + [f"- **{name}**: {b['assumptions']}"
                                   for name, b in report["baselines"].items()] + [""]
    out += ["## Definitions", ""] + [f"- {d}" for d in report["definitions"]] + [""]
    out += ["## Plots", ""]
    if report["plots"]:
        out += [f"![{Path(p).stem}]({p})" for p in report["plots"]] + [""]
    else:
        out += [report.get("plots_skipped") or "No plots.", ""]
    return "\n".join(out)
