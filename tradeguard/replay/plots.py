"""PNG plots of a replay report, with matplotlib when it is installed (the ``plots`` extra).

- ``actions.png``: the live action against the replayed one, every order of the range;
- ``timeline.png``: orders stopped per minute on each side, with the halts of each side;
- ``causes.png``: differences per cause (only when there are differences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeguard.replay.compare import ACTIONS
from tradeguard.scorecard.plots import PlotsUnavailable
from tradeguard.scorecard.plots import _pyplot as pyplot  # matplotlib, files only, or why not

__all__ = ["PlotsUnavailable", "write_plots"]


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write every plot to ``out_dir``; return their paths. PlotsUnavailable without matplotlib."""
    plt = pyplot()
    out = Path(out_dir)
    paths = [_actions(plt, report, out)]
    if "timeline" in report:
        paths.append(_timeline(plt, report, out))
    if report["comparison"]["causes"]:
        paths.append(_causes(plt, report, out))
    return paths


def _actions(plt, report: dict[str, Any], out: Path) -> Path:
    c = report["comparison"]
    live, this = c["sides"]
    grid = [[c["transitions"][a][b] for b in ACTIONS] for a in ACTIONS]
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    # Kept actions blue, changed ones orange, empty cells white.
    colors = [[(1, 1, 1) if not v else (0.75, 0.85, 0.95) if i == j else (0.98, 0.72, 0.45)
               for j, v in enumerate(row)] for i, row in enumerate(grid)]
    ax.imshow(colors)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:,}", ha="center", va="center",
                    fontweight="bold" if i != j and v else "normal")
    ax.set_xticks(range(3), ACTIONS)
    ax.set_yticks(range(3), ACTIONS)
    version = report["versions"][this]
    ax.set_xlabel(f"{this} ({version.get('policy_version') or ', '.join(version['policy_versions'])})")
    ax.set_ylabel(live)
    ax.set_title("Action per order")
    return _save(plt, fig, out / "actions.png")


def _timeline(plt, report: dict[str, Any], out: Path) -> Path:
    t = report["timeline"]
    start = t["minute_start_ms"][0]
    x = [(m - start) / 60_000 for m in t["minute_start_ms"]]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.bar(x, t["orders_live"], width=1.0, align="edge", color="#dddddd", label="orders")
    edges = x + [x[-1] + 1]  # the last minute's step is drawn to its end
    for key, style in (("stopped_live", "-"), ("stopped_replay", "--"),
                       ("stopped_live_policy_replay", ":")):
        if key in t:
            ax.step(edges, t[key] + t[key][-1:], where="post", linestyle=style,
                    label=key.replace("stopped_", "stopped, ").replace("_", " "))
    halts = report["halts"]
    live, this = report["comparison"]["sides"]
    for entries, when, color in ((halts["same"], f"{live}_ts", "tab:red"),
                                 (halts["moved"], f"{live}_ts", "tab:red"),
                                 (halts["removed"], "ts", "tab:red"),
                                 (halts["moved"], f"{this}_ts", "tab:purple"),
                                 (halts["added"], "ts", "tab:purple")):
        for h in entries:
            if h["action"] == "halt_buys":
                ax.axvline((h[when] - start) / 60_000, color=color, alpha=0.6, linewidth=1)
    ax.set_xlabel(f"minutes from {report['window']['from']} (red: live halts, purple: "
                  f"{this} halts)")
    ax.set_ylabel("orders per minute")
    ax.legend(loc="upper right", fontsize=8)
    return _save(plt, fig, out / "timeline.png")


def _causes(plt, report: dict[str, Any], out: Path) -> Path:
    causes = report["comparison"]["causes"]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(causes)))
    names = list(causes)[::-1]
    ax.barh(names, [causes[n] for n in names], color="tab:orange")
    for i, n in enumerate(names):
        ax.text(causes[n], i, f" {causes[n]:,}", va="center")
    ax.set_xlabel("differences")
    ax.set_title("Differences by cause")
    return _save(plt, fig, out / "causes.png")


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
