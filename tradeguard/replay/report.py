"""The replay report on disk: ``report.json``, ``report.md``, ``differences.jsonl``, plots.

``differences.jsonl`` holds every difference (one JSON object a line, with the
comparison it belongs to); ``report.json`` keeps the first ``KEEP`` of each
comparison so that it stays readable when a candidate policy changes
thousands of decisions.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from tradeguard.replay.compare import ACTIONS, CAUSES

__all__ = ["KEEP", "markdown", "write_report"]

KEEP = 1_000
SHOWN = 50  # differences listed in the Markdown


def write_report(report: dict[str, Any], out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Write the files; return their paths (plots only when matplotlib is installed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with open(out / "differences.jsonl", "wb") as f:
        for name, section in _comparisons(report):
            for d in section["differences"]:
                f.write(orjson.dumps({"comparison": name, **d}) + b"\n")
    written.append(out / "differences.jsonl")
    if plots:
        from tradeguard.replay.plots import PlotsUnavailable, write_plots

        try:
            report.setdefault("plots", [p.name for p in write_plots(report, out)])
            written += [out / name for name in report["plots"]]
        except PlotsUnavailable as exc:
            report.setdefault("notes", []).append(str(exc))
    kept = copy.deepcopy(report)
    for _, section in _comparisons(kept):
        total = len(section["differences"])
        section["differences_total"] = total
        del section["differences"][KEEP:]
    (out / "report.json").write_bytes(orjson.dumps(kept, option=orjson.OPT_INDENT_2))
    (out / "report.md").write_text(markdown(report))
    return [out / "report.json", out / "report.md", *written]


def _comparisons(report: dict[str, Any]):
    """(name, comparison section) pairs in the report: the replay, and its fidelity run."""
    if "comparison" in report:
        yield "comparison", report["comparison"]
    fidelity = report.get("fidelity") or {}
    if "comparison" in fidelity:
        yield "fidelity", fidelity["comparison"]


def markdown(report: dict[str, Any]) -> str:
    """The report for people: what was replayed, with what, and what changed."""
    w = report["window"]
    c = report["comparison"]
    live_side, this_side = c["sides"]
    lines = [f"# Replay {w['from']} .. {w['to']}", ""]
    lines += [f"Broker `{report['broker']}`, topic prefix `{report['topic_prefix'] or '-'}`, "
              f"{report['partitions']} partitions. Warm-up from {report['warmup']['from']} "
              f"(lead-in {w['lead_in']}); {report['warmup']['note']}.", ""]
    lines += ["## Versions", "", "| side | policy_version | policy source | model versions |",
              "|---|---|---|---|"]
    for side, v in report["versions"].items():
        if side == "engine":
            continue
        policy = ", ".join(f"`{p}` ({n})" for p, n in v["policy_versions"].items()) \
            if "policy_versions" in v else f"`{v['policy_version']}`"
        models = v["model_versions"]
        top = ", ".join(f"`{m}`" for m in list(models["most_decisions"])[:2])
        lines.append(f"| {side} | {policy} | {v.get('policy_source', 'published decisions')} | "
                     f"{models['distinct']} distinct; most used {top or '-'} |")
    e = report["versions"]["engine"]
    lines += ["", f"Engine settings: anomaly window {e['anomaly_window']}, home market "
                  f"{e['home_market']}.", ""]
    fidelity = report["fidelity"]
    exact = fidelity["reproduced_exactly"]
    lines += ["## Fidelity", ""]
    if "comparison" in fidelity:
        f = fidelity["comparison"]
        lines += [f"The live policy replayed against what was published: reproduced exactly: "
                  f"**{'yes' if exact else 'no'}** ({f['orders']['identical']} of "
                  f"{f['orders']['compared']} decisions identical).", ""]
        lines += _causes(f)
    else:
        lines += [f"The replay's policy is the live one: reproduced exactly: "
                  f"**{'yes' if exact else 'no'}** ({c['orders']['identical']} of "
                  f"{c['orders']['compared']} decisions identical).", ""]
    lines += [f"## {this_side} against {live_side}", ""]
    lines += ["| orders | count |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v:,} |" for k, v in c["orders"].items()]
    lines += ["", "Actions (rows: live, columns: replay):", "",
              "| live \\ " + this_side + " | " + " | ".join(ACTIONS) + " |",
              "|---|" + "---|" * len(ACTIONS)]
    for a in ACTIONS:
        lines.append(f"| {a} | " + " | ".join(f"{c['transitions'][a][b]:,}" for b in ACTIONS)
                     + " |")
    lines.append("")
    if c["changed_by_reason"]:
        lines += ["Changed actions by the stricter side's top reason:", "",
                  "| change | reason | orders |", "|---|---|---|"]
        lines += [f"| {r['transition']} | {r['reason']} | {r['orders']:,} |"
                  for r in c["changed_by_reason"]]
        lines.append("")
    lines += _causes(c)
    lines += _labels(c["labels"], live_side, this_side)
    for title, key, section in (("Halts", "ticker", report["halts"]),
                                ("Account actions", "account_id", report["account_actions"])):
        lines += _controls(title, key, section, live_side, this_side)
    lines += _differences(c, live_side, this_side)
    lines += ["## Inputs", "", "| topic | warm-up | range | before warm-up (skipped) | "
              "after range (skipped) | undecodable | dead-lettered live (left out) |",
              "|---|---|---|---|---|---|---|"]
    for name, n in report["inputs"].items():
        lines.append(f"| {name} | {n['warmup']:,} | {n['range']:,} | "
                     f"{n['before_warmup_skipped']:,} | {n['after_range_skipped']:,} | "
                     f"{n['undecodable']:,} | {n['dead_lettered_live']:,} |")
    d = report["live_decisions"]
    lines += ["", f"Published decisions read for the range: {d['read']:,} for {d['orders']:,} "
                  f"orders ({d['undecodable']} undecodable). Labels: "
                  f"{report['labels']['fraud']} fraud, {report['labels']['legit']} legit "
                  "(order labels; account-wide labels name no order).", ""]
    controls = report["controls"]
    if controls["seeded_at_warmup_start"] or controls["operator_controls_applied"]:
        lines += [f"Controls in force at the warm-up's start: "
                  f"{controls['seeded_at_warmup_start'] or 'none'}; operators' controls "
                  f"applied at their time: {len(controls['operator_controls_applied'])}.", ""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    s = report["speed"]
    lines += ["## Speed", "", f"{s['records']:,} records ({s['orders']:,} orders) in "
                              f"{s['seconds']} s: {s['records_per_s']:,} records/s, "
                              f"{s['orders_per_s']:,} orders/s, {s['engines']} engine run(s), "
                              "reading from Kafka included.", ""]
    for name in report.get("plots", []):
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _causes(c: dict[str, Any]) -> list[str]:
    if not c["causes"]:
        return ["No differences.", ""]
    out = ["| cause | orders | meaning |", "|---|---|---|"]
    out += [f"| {cause} | {n:,} | {CAUSES.get(cause, '')} |" for cause, n in c["causes"].items()]
    return out + [""]


def _labels(labels: dict[str, Any], a: str, b: str) -> list[str]:
    if not labels["labelled_orders"]:
        return ["No labelled orders in the range.", ""]
    rows = [("labelled fraud orders", "fraud_orders"), ("fraud stopped", "fraud_stopped"),
            ("fraud yen", "fraud_yen"), ("fraud yen stopped", "fraud_yen_stopped"),
            ("labelled legit orders", "legit_orders"), ("legit stopped", "legit_stopped"),
            ("legit stopped per 10,000", "legit_stopped_per_10k")]
    out = ["Labelled orders (hold and block count as stopped):", "", f"| | {a} | {b} |",
           "|---|---|---|"]
    out += [f"| {title} | {_num(labels[a][k])} | {_num(labels[b][k])} |" for title, k in rows]
    return out + [""]


def _controls(title: str, key: str, section: dict[str, Any], a: str, b: str) -> list[str]:
    n = section["counts"]
    out = [f"## {title}", "", f"{a}: {n[a]}, {b}: {n[b]}; same {n['same']}, moved "
                             f"{n['moved']}, added {n['added']}, removed {n['removed']}.", ""]
    rows = ([("moved", m[key], m["action"], f"{m[a + '_time']} -> {m[b + '_time']} "
              f"({m['shift_ms'] / 1000:+g} s)") for m in section["moved"]]
            + [("added", x[key], x["action"], f"{x['time']} ({x['reason']})")
               for x in section["added"]]
            + [("removed", x[key], x["action"], f"{x['time']} ({x['reason']})")
               for x in section["removed"]])
    if rows:
        out += [f"| change | {key} | action | when |", "|---|---|---|---|"]
        out += [f"| {c} | {k} | {act} | {when} |" for c, k, act, when in rows[:SHOWN]]
        if len(rows) > SHOWN:
            out.append(f"| ... | {len(rows) - SHOWN} more | | |")
        out.append("")
    return out


def _differences(c: dict[str, Any], a: str, b: str) -> list[str]:
    diffs = c["differences"]
    if not diffs:
        return []
    out = [f"## Differences ({len(diffs):,}; all in differences.jsonl)", "",
           f"| order | time | ticker | side | {a} | {b} | cause | why |",
           "|---|---|---|---|---|---|---|---|"]
    for d in diffs[:SHOWN]:
        out.append(f"| {d['order_id']} | {d['order_time']} | {d['ticker']} | {d['side']} | "
                   f"{_verdict(d[a])} | {_verdict(d[b])} | {d['cause']} | "
                   f"{d['explanation'].replace('|', '/')} |")
    if len(diffs) > SHOWN:
        out.append(f"| ... | {len(diffs) - SHOWN:,} more | | | | | | |")
    return out + [""]


def _verdict(v: dict[str, Any] | None) -> str:
    if v is None:
        return "-"
    codes = ", ".join(r["code"] for r in v["reasons"][:2])
    return f"{v['action']} {v['score']:.4f}" + (f" ({codes})" if codes else "")


def _num(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if isinstance(x, float) and x >= 1000 else f"{x:,}"
