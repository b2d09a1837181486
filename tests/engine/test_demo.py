"""The README's main job, in its short mode, runs to completion and stops what it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.broker


def test_demo_quick_runs_to_completion_and_stops_the_attack():
    result = subprocess.run([sys.executable, "-m", "tradeguard.cli.main", "demo", "--quick"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "HALT BUYS 4592" in out
    stopped = next(line for line in out.splitlines() if line.startswith("attacker orders stopped"))
    caught, total = stopped.split(": ")[1].split(";")[0].split("/")
    assert int(caught) >= int(total) // 2
    # Every process the demo started is gone: the broker and the worker, by their pids.
    started = re.search(r"\(pid (\d+)\), worker pid (\d+)", out)
    assert started, out[:2000]
    for pid in map(int, started.groups()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
