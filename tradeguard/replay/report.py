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

__all__ = ["KEEP", "markdown", "summary", "write_report"]

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
    if "fidelity" not in report:
        return _shadow_markdown(report)
    w = report["window"]
    c = report["comparison"]
    live_side, this_side = c["sides"]
    lines = [f"# Replay {w['from']} .. {w['to']}", ""]
    lines += [f"Broker `{report['broker']}`, topic prefix `{report['topic_prefix'] or '-'}`, "
              f"{report['partitions']} partitions. Warm-up from {report['warmup']['from']} "
              f"(lead-in {w['lead_in']}); {report['warmup']['note']}.", ""]
    lines += _versions(report)
    e = report["versions"]["engine"]
    lines += [f"Engine settings: anomaly window {e['anomaly_window']}, home market "
              f"{e['home_market']}.", ""]
    fidelity = report["fidelity"]
    exact = fidelity["reproduced_exactly"]
    lines += ["## Fidelity", ""]
    f = fidelity.get("comparison", c)
    lines += [f"The live policy replayed against what was published: reproduced exactly: "
              f"**{'-' if exact is None else 'yes' if exact else 'no'}** ({f['orders']['identical']:,} of "
              f"{f['orders']['compared']:,} decisions of the range identical; in the warm-up "
              f"{f['warmup']['identical']:,} of {f['warmup']['compared']:,}).", ""]
    lines += _provenance_lines(report.get("provenance")) + [""]
    if "comparison" in fidelity:
        lines += _causes(f)
    if f["warmup"]["causes"]:
        lines += ["Differences in the warm-up (the live worker's state they leave behind is "
                  "what `account_history` and `model_state` refer to):", "",
                  "| cause | orders |", "|---|---|"]
        lines += [f"| {k} | {n:,} |" for k, n in f["warmup"]["causes"].items()] + [""]
    lines += [f"## {this_side} against {live_side}", ""]
    lines += _comparison(c)
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
    lines += [f"Controls in force at the warm-up's start: "
              f"{controls['seeded_at_warmup_start'] or 'none'}; operators' controls applied "
              f"at their time: {len(controls['operator_controls_applied'])}; control records "
              f"refused as the live board refuses them (unsigned or forged): "
              f"{sum(controls.get('refused_unsigned_or_forged', {}).values())}.", ""]
    lines += _notes(report)
    s = report["speed"]
    lines += ["## Speed", "", f"{s['records']:,} records ({s['orders']:,} orders) in "
                              f"{s['seconds']} s: {s['records_per_s']:,} records/s, "
                              f"{s['orders_per_s']:,} orders/s, {s['engines']} engine run(s), "
                              "reading from Kafka included. Seconds by stage: "
                              + ", ".join(f"{k.replace('_', ' ')} {v:g}"
                                          for k, v in s.get("seconds_by_stage", {}).items())
                              + ".", ""]
    for name in report.get("plots", []):
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _provenance_lines(prov: dict[str, Any] | None, indent: str = "") -> list[str]:
    """The exact replay from the live steps' provenance (tradeguard/replay/provenance.py)."""
    if not prov:
        return []
    if not prov.get("steps", 1) or "live_policy" not in prov:
        return [f"{indent}provenance: {prov.get('note', 'none')}"]
    lines = []
    for key, title in (("live_policy", "live policy"), ("candidate", "candidate")):
        r = prov.get(key)
        if r is None:
            continue
        lines.append(f"{indent}provenance ({title}, every live step fed again): "
                     f"{r['identical']:,} of {r['compared']:,} live decisions identical "
                     f"(range {r['range']['identical']:,} of {r['range']['compared']:,}); "
                     f"{r['steps']:,} steps of {r['workers']} worker incarnations"
                     + (f"; {r['step_lost']} decisions whose step record was lost"
                        if r["step_lost"] else ""))
    return lines


def summary(report: dict[str, Any]) -> list[str]:
    """A few lines for the terminal: what was compared, what changed, and why."""
    w, c = report["window"], report["comparison"]
    a, b = c["sides"]
    o = c["orders"]
    changes = ", ".join(f"{x}->{y} {c['transitions'][x][y]:,}" for x in ACTIONS for y in ACTIONS
                        if x != y and c["transitions"][x][y]) or "none"
    versions = report["versions"]
    this = versions[b].get("policy_version") or ", ".join(versions[b]["policy_versions"]) or "-"
    lines = [f"{report['tool']} {w['from']} .. {w['to']}: {o['compared']:,} orders compared, "
             f"{o['identical']:,} identical",
             f"  {a} {', '.join(versions['live']['policy_versions']) or '-'} -> {b} {this}: "
             f"actions changed {changes}"]
    if "fidelity" in report:
        exact = report["fidelity"]["reproduced_exactly"]
        lines.append("  live policy reproduced exactly: "
                     + ("nothing to reproduce in the range" if exact is None
                        else "yes" if exact else "no"))
        h, acc = report["halts"]["counts"], report["account_actions"]["counts"]
        lines.append(f"  halts: {h['same']} same, {h['moved']} moved, +{h['added']} "
                     f"-{h['removed']}; account actions: {acc['same']} same, {acc['moved']} "
                     f"moved, +{acc['added']} -{acc['removed']}")
    lines += _provenance_lines(report.get("provenance"), "  ")
    if c["causes"]:
        lines.append("  differences by cause: " + ", ".join(f"{k} {n:,}"
                                                           for k, n in c["causes"].items()))
    lines += [f"  note: {n}" for n in report.get("notes", []) if n.startswith("no published")]
    return lines


def _shadow_markdown(report: dict[str, Any]) -> str:
    w, c = report["window"], report["comparison"]
    live_side, shadow_side = c["sides"]
    lines = [f"# Shadow policy against the live one, {w['from']} .. {w['to']}", "",
             f"Broker `{report['broker']}`, topic prefix `{report['topic_prefix'] or '-'}`: "
             "`decisions` against `decisions.shadow`, paired on order_id.", ""]
    lines += _versions(report)
    lines += [", ".join(f"{side}: {n['decisions']:,} decisions for {n['orders']:,} orders "
                        f"({n['orders_decided_more_than_once']:,} decided more than once; the "
                        "first counts)" for side, n in report["records"].items()) + ".", ""]
    lines += [f"## {shadow_side} against {live_side}", ""] + _comparison(c)
    lines += _differences(c, live_side, shadow_side)
    lines += _notes(report)
    for name in report.get("plots", []):
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _versions(report: dict[str, Any]) -> list[str]:
    lines = ["## Versions", "", "| side | policy_version | policy source | model versions |",
             "|---|---|---|---|"]
    for side, v in report["versions"].items():
        if side == "engine":
            continue
        policy = ", ".join(f"`{p}` ({n:,})" for p, n in v["policy_versions"].items()) \
            if "policy_versions" in v else f"`{v['policy_version']}`"
        models = v["model_versions"]
        top = ", ".join(f"`{m}`" for m in list(models["most_decisions"])[:2])
        lines.append(f"| {side} | {policy or '-'} | {v.get('policy_source', 'published')} | "
                     f"{models['distinct']} distinct; most used {top or '-'} |")
    return lines + [""]


def _comparison(c: dict[str, Any]) -> list[str]:
    """Orders, actions changed (matrix and per reason), causes and labels of one comparison."""
    live_side, this_side = c["sides"]
    lines = ["| orders | count |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v:,} |" for k, v in c["orders"].items()]
    lines += ["", f"Actions (rows: {live_side}, columns: {this_side}):", "",
              f"| {live_side} \\ {this_side} | " + " | ".join(ACTIONS) + " |",
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
    return lines + _labels(c["labels"], live_side, this_side)


def _notes(report: dict[str, Any]) -> list[str]:
    if not report.get("notes"):
        return []
    return ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]


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
