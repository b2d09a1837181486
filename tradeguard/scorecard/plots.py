"""PNG plots of a scorecard, with matplotlib when it is installed (``pip install '.[plots]'``).

- ``ticker-<TICKER>.png``: each targeted ticker's price and volume on
  ``market.trades``, with the campaign start, the engine's halt, the static
  rules' halt and the accomplices' dump marked;
- ``timeline.png``: every detection in event time (stopped and missed fraud,
  legitimate orders stopped, account actions, halts) with the campaign starts;
- ``precision-recall.png``: precision and recall of "score >= threshold"
  against the threshold, for the engine's score and the anomaly model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.topics import MARKET_TRADES
from tradeguard.scorecard.outcome import Outcome, session_orders
from tradeguard.simulator.generate import Session

__all__ = ["PlotsUnavailable", "write_plots"]


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotsUnavailable("matplotlib is not installed, so there are no plots "
                               "(pip install 'tradeguard[plots]')") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def write_plots(session: Session, report: dict[str, Any], engine: Outcome,
                out_dir: str | Path) -> list[str]:
    """Write every plot to ``out_dir``; return their file names.

    Raises PlotsUnavailable when matplotlib is not installed.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    names = []
    halts = {name: {ticker: t["halt_ts"] for ticker, t in section["tickers"]["targeted"].items()}
             for name, section in [("engine", report), *report["baselines"].items()]}
    for t in session.truth.tickers:
        names.append(_ticker_plot(plt, session, t, halts, out_dir))
    names.append(_timeline(plt, session, engine, out_dir))
    names.append(_precision_recall(plt, report["threshold_curve"], out_dir))
    return names


def _minutes(session: Session, ts: int) -> float:
    return (ts - session.open_ms) / 60_000


def _ticker_plot(plt, session: Session, target, halts: dict[str, dict[str, int | None]],
                 out_dir: Path) -> str:
    """Price and volume of one targeted ticker around its campaign; ``halts`` per detector."""
    marks = [t for t in (target.preposition_start_ts, target.campaign_start_ts) if t is not None]
    lo = max(session.open_ms, min(marks) - 10 * 60_000)
    trades = [r for t, r in session.records if t == MARKET_TRADES
              and r["ticker"] == target.ticker and lo <= r["ts"] <= session.close_ms]
    fig, (ax_p, ax_v) = plt.subplots(2, 1, sharex=True, figsize=(10, 6),
                                     gridspec_kw={"height_ratios": [2, 1]})
    x = [_minutes(session, r["ts"]) for r in trades]
    ax_p.step(x, [r["price"] for r in trades], where="post", color="black", lw=1)
    if trades:
        span = max(x[-1] - x[0], 1e-3)
        ax_v.hist(x, bins=min(120, max(10, len(trades) // 3)), weights=[r["qty"] for r in trades],
                  color="steelblue")
        ax_v.set_xlim(x[0] - span * 0.02, x[-1] + span * 0.02)
    lines = [("pre-positioning starts", target.preposition_start_ts, "orange", ":"),
             ("campaign start", target.campaign_start_ts, "red", "--"),
             ("dump starts", target.dump_start_ts, "purple", "-.")]
    for name, style in (("engine", ("engine halt", "green", "-")),
                        ("static_rules_2025", ("static-rules halt", "grey", ":"))):
        halt_ts = halts.get(name, {}).get(target.ticker)
        if halt_ts is not None and halt_ts <= session.close_ms:
            label = style[0] if halt_ts >= lo else (
                f"{style[0]} (in force since t+{_minutes(session, halt_ts):.0f} min)")
            lines.append((label, max(halt_ts, lo), style[1], style[2]))
    for label, ts, color, style in lines:
        if ts is not None:
            for ax in (ax_p, ax_v):
                ax.axvline(_minutes(session, ts), color=color, ls=style,
                           label=label if ax is ax_p else None)
    ax_p.set_ylabel("price (yen)")
    ax_p.set_title(f"{target.ticker} ({target.tier}, campaign {target.campaign})")
    ax_p.legend(loc="upper left", fontsize=8)
    ax_v.set_ylabel("volume (shares)")
    ax_v.set_xlabel("minutes from the open (event time)")
    name = f"ticker-{target.ticker.replace(':', '_')}.png"
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    plt.close(fig)
    return name


def _timeline(plt, session: Session, engine: Outcome, out_dir: Path) -> str:
    """The engine's detections against the truth, one row per kind, in event time."""
    truth = session.truth
    fraud = truth.fraud_order_ids
    accomplice = {i for a in truth.accomplices for i in a.order_ids}
    taken = {a.account_id for a in truth.accounts}
    rows: dict[str, list[float]] = {k: [] for k in (
        "fraud order missed", "fraud order stopped", "legit order stopped",
        "account action, taken over", "account action, false", "halt, targeted", "halt, false")}
    for o in session_orders(session.records, session.open_ms):
        m = _minutes(session, o["ts"])
        if o["order_id"] in fraud:
            rows["fraud order stopped" if engine.stopped(o["order_id"])
                 else "fraud order missed"].append(m)
        elif o["order_id"] not in accomplice and engine.stopped(o["order_id"]):
            rows["legit order stopped"].append(m)
    for a in engine.account_actions:
        if a.action == "release":
            continue
        rows["account action, taken over" if a.account_id in taken
             else "account action, false"].append(_minutes(session, a.ts))
    for h in engine.halts:
        rows["halt, targeted" if h.ticker in truth.targeted_tickers
             else "halt, false"].append(_minutes(session, h.ts))
    colors = ["red", "green", "orange", "green", "orange", "green", "orange"]
    fig, ax = plt.subplots(figsize=(11, 4))
    for y, ((label, xs), color) in enumerate(zip(rows.items(), colors)):
        ax.scatter(xs, [y] * len(xs), s=14, color=color, marker="|" if y < 3 else "o")
    for c in truth.campaigns:
        ax.axvline(_minutes(session, c.start_ts), color="red", ls="--", lw=0.8)
        ax.text(_minutes(session, c.start_ts), len(rows) - 0.4, c.name, fontsize=7, color="red")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(-0.5, len(rows))
    ax.set_xlim(0, _minutes(session, session.close_ms))
    ax.set_xlabel("minutes from the open (event time); dashed: campaign starts")
    ax.set_title(f"Engine detections, {session.scenario}")
    fig.tight_layout()
    fig.savefig(out_dir / "timeline.png", dpi=110)
    plt.close(fig)
    return "timeline.png"


def _precision_recall(plt, curves: dict[str, list[dict]], out_dir: Path) -> str:
    """Precision and recall against the score threshold, one colour per scorer."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (name, curve), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
        t = [p["threshold"] for p in curve]
        for key, style in (("precision", "-"), ("recall", "--")):
            ax.plot(t, [p[key] if p[key] is not None else float("nan") for p in curve],
                    style, color=color, label=f"{name} {key}")
    ax.set_xlabel("score threshold (flag at or above)")
    ax.set_ylabel("fraudulent orders")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Precision and recall against threshold")
    fig.tight_layout()
    fig.savefig(out_dir / "precision-recall.png", dpi=110)
    plt.close(fig)
    return "precision-recall.png"
