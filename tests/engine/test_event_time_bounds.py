"""Event time far from the worker's clock is dead-lettered with the reason, not decided: with the
default bounds (7 days back, 5 minutes ahead), an order from 8 days ago and one from 10 minutes
ahead go to `deadletter` naming `ts`; so does a quantity beyond the plausible bound (10^12 shares,
naming `qty`); an order from now is decided."""

from __future__ import annotations

import time

import pytest

from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

DAY_MS = 86_400_000


def test_event_time_outside_the_window_is_deadlettered(engine_settings, start_worker):
    settings = engine_settings.with_(max_event_age_s=7 * 86400.0, max_event_lead_s=300.0)
    worker = start_worker(settings)
    now = int(time.time() * 1000)
    gateway = GatewayProducer(settings)
    base = {"account_id": "acct-t", "ticker": "7203", "side": "buy", "qty": 100,
            "price": 2500.0, "margin": False, "session_id": None}
    gateway.send("orders", {**base, "order_id": "old", "ts": now - 8 * DAY_MS})
    gateway.send("orders", {**base, "order_id": "ahead", "ts": now + 600_000})
    gateway.send("orders", {**base, "order_id": "huge", "ts": now, "qty": 10**12})
    gateway.send("orders", {**base, "order_id": "now", "ts": now})
    gateway.flush()
    with TopicReader(settings, "decisions", "deadletter") as reader:
        got = reader.read_until(lambda rs: sum(n == "deadletter" for n, _ in rs) >= 3
                                and any(n == "decisions" for n, _ in rs), 60)
    decided = {v["order_id"] for n, v in got if n == "decisions"}
    dead = [v for n, v in got if n == "deadletter"]
    assert decided == {"now"}, worker.log_tail()
    assert sorted(d["field"] for d in dead) == ["qty", "ts", "ts"]
    errors = sorted(d["error"] for d in dead if d["field"] == "ts")
    assert "ahead of the worker's clock" in errors[0] + errors[1]
    assert "s old" in errors[0] + errors[1]
