"""Sampling profile of a worker under load (py-spy, when installed), grouped by engine area.

Each sample is charged to the innermost frame that is engine code (its area:
feature kernels, models, policy, codecs, ...); samples with no engine frame
at all go to the library they were in (Faust/mode, aiokafka, asyncio). So the
table answers "which part of the engine, or of the framework around it, is
the CPU in".

>>> lines = ["run (mode/services.py:1);score (tradeguard/policy/orders.py:9);f (numpy/x.py:3) 3",
...          "main (tradeguard/cli/main.py:1);run (aiokafka/conn.py:5) 1"]
>>> summarize(lines)["by_area"]
{'policy': 0.75, 'aiokafka (no engine frame)': 0.25}
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

__all__ = ["py_spy", "summarize"]

#: Engine paths, most specific first, and the area they stand for.
AREAS = (
    ("tradeguard/features/ids.py", "ids and string hashing"),
    ("tradeguard/features/batches.py", "columnar batches"),
    ("tradeguard/features/", "feature kernels"),
    ("tradeguard/models/", "models"),
    ("tradeguard/policy/", "policy"),
    ("tradeguard/core/", "core (columns, reasons, controls, blocks)"),
    ("streams/", "decode/encode (streams)"),
    ("tradeguard/runtime/metrics.py", "metrics"),
    ("agents/", "agents"),
    ("tradeguard/", "tradeguard, other"),
)
#: Frames every sample has (the worker's entry point): not an area of their own.
ROOTS = ("tradeguard/cli/", "agents/worker.py")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter or on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def _area(files: list[str]) -> str:
    """py-spy names files relative to their sys.path entry: ``tradeguard/...``, ``aiokafka/...``."""
    if files and files[-1] == "selectors.py":
        return "idle: event loop waiting in epoll"
    for depth, path in enumerate(reversed(files)):
        if path.startswith(ROOTS):
            break
        for prefix, area in AREAS:
            if path.startswith(prefix):
                if area == "agents" and depth > 0:
                    return "Kafka client calls from agents (produce, poll)"
                return area
    leaf = files[-1] if files else "?"
    return f"{leaf.split('/')[0] if '/' in leaf else leaf.removesuffix('.py')} (no engine frame)"


def summarize(lines) -> dict:
    """Shares of samples by area, and the top leaf functions, from py-spy's raw output."""
    areas: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.strip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [m.groupdict() for f in stack.split(";") if (m := _FRAME.match(f))]
        n = int(count)
        total += n
        areas[_area([f["file"] for f in frames])] += n
        if frames:
            leaf = frames[-1]
            leaves[f"{leaf['func']} ({Path(leaf['file']).name})"] += n
    if not total:
        return {"samples": 0, "by_area": {}, "top_leaf_functions": {}}
    shares = {a: round(n / total, 4) for a, n in areas.most_common() if n / total >= 0.01}
    rest = 1 - sum(shares.values())
    if rest > 0.0001:
        shares["everything under 1% each"] = round(rest, 4)
    return {"samples": total, "by_area": shares,
            "top_leaf_functions": {f: round(n / total, 4) for f, n in leaves.most_common(15)}}
