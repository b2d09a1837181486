"""State survives a crash: a killed worker's successor decides exactly as if nothing happened."""

from __future__ import annotations

import time

import pytest

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.demo.session import scripted_session
from tradeguard.policy.config import PolicyFile
from tradeguard.replay import provenance

pytestmark = pytest.mark.broker


#: Event time runs this much faster than the wall clock while the session is sent. Ticker
#: profiles are read one period (60 s of event time) after they are published: at 120x
#: that leaves half a second of wall time for the broadcast, on a busy 2-core machine.
SPEED = 120.0
#: The killed worker's partitions move after this much silence (the profile's 10 s on Tansu):
#: this test is about the state the successor takes over, not how soon it gets it.
SESSION_MS = 3_000


def _run(settings, start_worker, script, kill_after: int | None):
    """Feed the history, then the session in event-time order at a steady pace (logins, trades
    and orders interleaved as they happened); optionally crash the worker mid-stream."""
    create_topics(settings)
    gateway = GatewayProducer(settings)
    for ev in script.warmup:
        gateway.send(ev.topic, ev.record)
    first = next(ev for ev in script.events if ev.topic == "orders")
    orders = [ev.record for ev in script.events if ev.topic == "orders"]
    gateway.flush()
    worker = start_worker(settings, name="first")
    decided: dict[str, dict] = {}
    with TopicReader(settings, "decisions") as reader:
        def absorb(timeout_s=0.05):
            for _, d in reader.poll(timeout_s):
                decided[d["order_id"]] = d  # a redelivered order's later decision wins

        crashed = False
        t0 = wall0 = None
        for ev in script.events:
            if wall0 is not None:
                while (lag := wall0 + (ev.record["ts"] - t0) / 1000 / SPEED
                       - time.monotonic()) > 0:
                    gateway.poll()
                    absorb(min(lag, 0.05))
            gateway.send(ev.topic, ev.record)
            if ev.topic == "auth.events":
                # A login reaches the broker before the orders of its session are sent, as it
                # does live (seconds apart); at 120x they would be milliseconds apart and race
                # on the wire, which no worker can order without waiting on every login topic.
                gateway.flush()
            if ev is first:  # the worker is up and consuming before the pace starts
                gateway.flush()
                while first.record["order_id"] not in decided:
                    absorb(0.2)
                    assert worker.alive, worker.log_tail()
                t0, wall0 = ev.record["ts"], time.monotonic()
            if kill_after is not None and not crashed and len(decided) >= kill_after:
                worker.kill()  # SIGKILL: no commit, no goodbye
                crashed = True
                worker = start_worker(settings, name="second")
        gateway.flush()
        deadline = time.monotonic() + 90
        while len(decided) < len(orders) and time.monotonic() < deadline:
            absorb(0.2)
    assert len(decided) == len(orders), worker.log_tail()
    assert kill_after is None or crashed
    return decided, worker


def test_every_decision_of_both_incarnations_is_reproduced_from_its_provenance(
        engine_settings, start_worker, tmp_path):
    """SIGKILL mid-session; every decision published, by the killed worker or its successor,
    is reproduced score for score from the steps' provenance (engine.steps), the successor's
    too: its restored state (snapshot plus the recorded steps up to the committed offsets)
    is the state the replay reaches by running every step from the start."""
    policy = tmp_path / "policy.toml"
    # Ticker halts depend on wall-clock timing between workers; this test is about state.
    policy.write_text("[ticker]\nhalt_risky_buyers = 1000\n")
    script = scripted_session(minutes=30, accounts=160, hijacked=5, seed=11)
    # A small anomaly window so the model's learned state matters within the run.
    settings = engine_settings.with_(policy_file=str(policy), snapshot_interval_s=0.5,
                                     anomaly_window=2, session_timeout_ms=SESSION_MS)
    orders = sum(1 for ev in script.events if ev.topic == "orders")
    crashed, successor = _run(settings, start_worker, script, kill_after=orders // 2)

    log = successor.log_path.read_text()
    assert "restored partition" in log and "from snapshot generation" in log, log[-3000:]
    # Each restore replayed the recorded steps, or had nothing to replay (its snapshot was
    # written after the last commit); none fell back to the event-time replay.
    restores = [line for line in log.splitlines() if "restored partition" in line]
    assert restores and all("steps (provenance)" in line or "nothing to replay" in line
                            for line in restores), restores
    recorded = provenance.read(settings)
    workers = {d["step"].split("/")[0] for d in recorded["decisions"]}
    assert len(workers) == 2, workers  # both incarnations decided orders
    result = provenance.replay_steps(settings, PolicyFile(str(policy)).current(), recorded)
    print({k: result[k] for k in ("compared", "identical", "step_lost", "steps", "workers",
                                  "handovers", "restored", "cost")})
    assert result["differences"] == [], result["differences"][:5]
    assert result["compared"] == result["identical"] >= orders
    # A decision whose step record the kill lost was never committed: decided again.
    assert result["compared"] + result["step_lost"] == len(recorded["decisions"])
    assert result["unstamped"] == 0 and result["profile_mismatches"] == 0
    assert result["handovers"] + result["restored"] >= 1  # the successor took partitions over
    assert any("/w0;" not in d["model_version"] for d in crashed.values())  # the model learned
