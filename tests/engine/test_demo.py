"""The README's main job, in its short mode, runs to completion and stops what it started."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tradeguard.demo.session import scripted_session

pytestmark = pytest.mark.broker


def test_demo_quick_runs_to_completion_and_stops_the_attack():
    result = subprocess.run([sys.executable, "-m", "tradeguard.cli.main", "demo", "--quick"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "HALT BUYS 4592" in out
    # The same script the demo replays (run_demo's quick mode): every order decided, and
    # every attacker order held or blocked, counted against the script, not the decisions.
    script = scripted_session(minutes=14, accounts=30)
    decided = re.search(r"^(\d+) orders decided in", out, re.M)
    assert decided and int(decided.group(1)) == script.order_count, out[-3000:]
    stopped = re.search(r"^attacker orders stopped \(hold/block\): (\d+)/(\d+); "
                        r"legitimate orders stopped: (\d+)/(\d+)$", out, re.M)
    assert stopped, out[-3000:]
    caught, attacker, legit_stopped, legit = map(int, stopped.groups())
    assert attacker == len(script.fraud_orders) > 0
    assert caught == attacker, out[-3000:]
    # Legitimate orders held: 1 of 76 today (a customer's own order on an account under
    # step-up after its takeover); a bound, so pacing noise does not fail it.
    assert legit == script.order_count - attacker and legit_stopped <= 2, out[-3000:]
    # Every process the demo started is gone: the broker and the worker, by their pids.
    started = re.search(r"\(pid (\d+)\), worker pid (\d+)", out)
    assert started, out[:2000]
    for pid in map(int, started.groups()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
