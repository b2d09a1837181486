"""Poison on every input topic, an oversized record, records from the future and the distant
past: each is dead-lettered with its reason, the worker stays up, and the good records around
them are decided."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.codec import MAX_ORIGINAL_BYTES
from tests.faults.helpers import login, now_ms, order, wait_until
from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

POISON = b'{"ticker": "7203", "qty": [[[' + b"[" * 3000


def test_poison_on_every_input_topic(engine_settings, start_worker):
    settings = engine_settings.with_(max_event_age_s=3600.0)
    worker = start_worker(settings)
    gateway = GatewayProducer(settings)
    gateway.send("auth.events", login("acct-1"))
    now = now_ms()
    bad = [  # (topic, key, value, reason the dead letter gives)
        ("orders", "acct-1", POISON, "qty: expected integer"),
        ("auth.events", "acct-1", b"\xff\xfe garbage", "malformed JSON"),
        ("market.trades", "7203", POISON, "qty: expected integer"),
        ("feedback", "acct-1", b"[]", "expected a JSON object"),
        ("tickers.flow", "7203", b"null", "expected a JSON object"),
        # Near the broker's 1 MB limit: its dead letter keeps the first 512 KiB and says so
        # (whole, base64 inside a dead letter, it could not be produced: the worker crashed).
        ("orders", "acct-1", orjson.dumps(order("o-big", "acct-1", ticker="T" * 990_000)),
         "ticker: longer than 64 characters (original value 990"),
        ("orders", "acct-1", orjson.dumps(order("o-future", "acct-1", ts=now + 86_400_000)),
         "ahead of the worker's clock"),
        ("orders", "acct-1", orjson.dumps(order("o-past", "acct-1", ts=now - 30 * 86_400_000)),
         "s old"),
    ]
    good = [order(f"o-{i}", "acct-1", ts=now + i) for i in range(5)]
    gateway.send("orders", good[0])
    for name, key, value, _ in bad:
        gateway.send(name, value, key=key)
    for o in good[1:]:
        gateway.send("orders", o)
    gateway.flush()

    with TopicReader(settings, "decisions", "deadletter") as reader:
        got = reader.read_until(lambda rs: sum(n == "deadletter" for n, _ in rs) >= len(bad)
                                and sum(n == "decisions" for n, _ in rs) >= len(good), 60)
    assert worker.alive, worker.log_tail()
    decided = sorted(d["order_id"] for n, d in got if n == "decisions")
    assert decided == sorted(o["order_id"] for o in good), worker.log_tail()
    dead = [d for n, d in got if n == "deadletter"]
    assert len(dead) == len(bad), [d["error"][:80] for d in dead]
    by_origin = {(d["source_topic"], base64.b64decode(d["original_b64"])): d for d in dead}
    for name, _, value, reason in bad:
        d = by_origin[(settings.topic(name), value[:MAX_ORIGINAL_BYTES])]  # the original bytes
        assert reason in d["error"], (name, d["error"][:120])
    wait_until(lambda: worker.alive, 1, "worker alive")
