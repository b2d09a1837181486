"""PNG plots of a replay report, with matplotlib when it is installed (the ``plots`` extra).

- ``actions.png``: the live action against the replayed one, every order of the range;
- ``timeline.png``: orders stopped per minute on each side, with the halts of each side;
- ``causes.png``: differences per cause (only when there are differences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeguard.replay.compare import ACTIONS

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


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write every plot to ``out_dir``; return their paths. PlotsUnavailable without matplotlib."""
    plt = _pyplot()
    out = Path(out_dir)
    paths = [_actions(plt, report, out), _timeline(plt, report, out)]
    if report["comparison"]["causes"]:
        paths.append(_causes(plt, report, out))
    return paths


def _actions(plt, report: dict[str, Any], out: Path) -> Path:
    c = report["comparison"]
    live, this = c["sides"]
    grid = [[c["transitions"][a][b] for b in ACTIONS] for a in ACTIONS]
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow([[min(v, 1) if v else 0 for v in row] for row in grid], cmap="Blues", vmin=0,
              vmax=2)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:,}", ha="center", va="center",
                    fontweight="bold" if i != j and v else "normal")
    ax.set_xticks(range(3), ACTIONS)
    ax.set_yticks(range(3), ACTIONS)
    ax.set_xlabel(f"{this} ({report['versions'][this]['policy_version']})")
    ax.set_ylabel(live)
    ax.set_title("Action per order")
    fig.tight_layout()
    path = out / "actions.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _timeline(plt, report: dict[str, Any], out: Path) -> Path:
    t = report["timeline"]
    start = t["minute_start_ms"][0]
    x = [(m - start) / 60_000 for m in t["minute_start_ms"]]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.bar(x, t["orders_live"], width=1.0, align="edge", color="#dddddd", label="orders")
    for key, style in (("stopped_live", "-"), ("stopped_replay", "--"),
                       ("stopped_live_policy_replay", ":")):
        if key in t:
            ax.step(x, t[key], where="post", linestyle=style,
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
    fig.tight_layout()
    path = out / "timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _causes(plt, report: dict[str, Any], out: Path) -> Path:
    causes = report["comparison"]["causes"]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(causes)))
    names = list(causes)[::-1]
    ax.barh(names, [causes[n] for n in names], color="tab:orange")
    for i, n in enumerate(names):
        ax.text(causes[n], i, f" {causes[n]:,}", va="center")
    ax.set_xlabel("differences")
    ax.set_title("Differences by cause")
    fig.tight_layout()
    path = out / "causes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
