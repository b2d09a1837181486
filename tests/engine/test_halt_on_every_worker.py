"""A halt raised on one worker is enforced by every worker (README: "every worker reads in full").

Two workers share the four partitions (range assignment: {0, 1} and {2, 3}). The
scripted takeover pumps 4592, whose ticker side (partition 0) raises the halt;
the hijacked accounts whose buys come after it live on both workers, so the
halt reaches the other worker only through the replicated ``controls.tickers``.
A worker that enforced only the halts it raised itself fails here, while the
one-worker takeover test passes.
"""

from __future__ import annotations

import io

import pytest

from streams.topics import partition_for
from tests.deploy.worker_probe import wait_split
from tradeguard.broker.embedded import free_port
from tradeguard.demo.run import replay_session
from tradeguard.demo.session import TARGET, scripted_session

pytestmark = pytest.mark.broker


def test_a_halt_raised_on_one_worker_blocks_buys_decided_on_the_other(engine_settings,
                                                                        start_worker):
    script = scripted_session(minutes=14, accounts=24, hijacked=4)
    second = engine_settings.with_(web_port=free_port())
    workers = [start_worker(engine_settings, name="a"), start_worker(second, name="b")]
    wait_split(list(zip((engine_settings, second), workers)), each=2, timeout_s=90)

    progress, _ = replay_session(engine_settings, script, speed=60.0, out=io.StringIO())
    assert all(w.alive for w in workers), [w.log_tail() for w in workers]
    halts = [h for h in progress.halts if h["ticker"] == TARGET]
    assert len(halts) == 1, [(h["action"], h["ts"], h.get("seq"), h.get("source"), h["reason"]) for h in halts]
    (halt,) = halts
    decisions = progress.decisions
    after = [d for d in decisions.values() if d["ticker"] == TARGET and d["side"] == "buy"
             and d["order_ts"] > halt["ts"]]
    halted_half = partition_for(TARGET, 4) // 2
    other_worker = [d for d in after if partition_for(d["account_id"], 4) // 2 != halted_half]
    assert other_worker, "no buy after the halt was decided on the other worker"
    assert all(d["action"] == "block" and d["reasons"][0]["code"] == "ticker_halted"
               for d in after), [(d["account_id"], d["action"], d["reasons"]) for d in after]
