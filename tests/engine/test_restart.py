"""State survives a crash: a killed worker's successor decides exactly as if nothing happened."""

from __future__ import annotations

import time

import pytest

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.embedded import free_port
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.demo.session import scripted_session

pytestmark = pytest.mark.broker


#: Event time runs this much faster than the wall clock while the session is sent. Ticker
#: profiles are read one period (60 s of event time) after they are published: at 120x
#: that leaves half a second of wall time for the broadcast, on a busy 2-core machine.
SPEED = 120.0


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


def test_restored_state_decides_like_an_uninterrupted_run(engine_settings, start_worker,
                                                           tmp_path):
    policy = tmp_path / "policy.toml"
    # Ticker halts depend on wall-clock timing between workers; this test is about state.
    policy.write_text("[ticker]\nhalt_risky_buyers = 1000\n")
    script = scripted_session(minutes=30, accounts=160, hijacked=5, seed=11)
    # A small anomaly window so the model's learned state matters within the run.
    base = engine_settings.with_(policy_file=str(policy), snapshot_interval_s=0.5,
                                 anomaly_window=2)

    calm, calm_worker = _run(base.with_(topic_prefix=base.topic_prefix + "calm.",
                                        app_id=base.app_id + "-calm"), start_worker, script, None)
    calm_worker.stop()
    crash_settings = base.with_(topic_prefix=base.topic_prefix + "crash.",
                                app_id=base.app_id + "-crash", web_port=free_port())
    crashed, successor = _run(crash_settings, start_worker, script, kill_after=len(calm) // 2)

    log = successor.log_path.read_text()
    assert "restored partition" in log and "from snapshot generation" in log, log[-3000:]
    differ = {o: (calm[o]["action"], calm[o]["score"], crashed[o]["action"], crashed[o]["score"])
              for o in calm
              if (calm[o]["action"], calm[o]["score"], calm[o]["model_version"])
              != (crashed[o]["action"], crashed[o]["score"], crashed[o]["model_version"])}
    assert not differ, '\n'.join(f'{calm[o]["reasons"]} {calm[o]["score"]} | {crashed[o]["reasons"]} {crashed[o]["score"]}' for o in list(differ)[:6])
    assert any("/w0;" not in d["model_version"] for d in calm.values())  # the model did learn
