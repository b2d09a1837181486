"""The gateway client on the embedded broker with no engine running: fallbacks, controls held
at the gateway, and late decisions reconciled (the engine's records written as it writes them)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka.partitioner import murmur2

from streams.records import DECISION
from streams.schema import RecordError
from tradeguard.kafka.admin import create_topics
from tradeguard.kafka.errors import BrokerError
from gateway_helpers import isolated_settings, order, read_topic, sample, wait_until
from tradeguard.broker.clients import GatewayProducer
from tradeguard.gateway import GatewayClient, OrderInFlight
from tradeguard.kafka import clients as kafka

pytestmark = pytest.mark.broker


@pytest.fixture
def settings(broker, tmp_path):
    return isolated_settings(broker, tmp_path, "nogw")


DEADLINE_MS = 300
# The deadline bounds the wait from above too: a client waiting ten times its deadline (3 s)
# must fail. The bound leaves 1.7 s for the produce, the thread's wake-up and a loaded
# machine's scheduling (measured: a few ms past the deadline), and still stays far below 10x.
WAIT_AT_MOST_MS = DEADLINE_MS + 1_700


@pytest.mark.parametrize("api", ["sync", "asyncio"])
@pytest.mark.parametrize("mode, action", [("fail_open", "allow"), ("fail_closed", "hold")])
def test_past_the_deadline_the_gateway_answers_by_its_mode(settings, mode, action, api, caplog):
    sent = order("acct-1")
    with GatewayClient(settings, mode=mode) as gateway, caplog.at_level(logging.INFO,
                                                                        "tradeguard.gateway"):
        started = time.monotonic()
        if api == "sync":
            d = gateway.submit(sent, deadline_ms=DEADLINE_MS)
        else:
            d = asyncio.run(gateway.submit_async(sent, deadline_ms=DEADLINE_MS))
        waited_ms = (time.monotonic() - started) * 1000.0
        assert (d.order_id, d.action, d.decided_by, d.fallback) == (
            sent["order_id"], action, "gateway", mode)
        assert d.review == (mode == "fail_open")
        assert d.reasons == ({"code": "engine_timeout", "value": float(DEADLINE_MS)},)
        # it waited for the engine, as long as it says it did, and not much longer
        assert d.engine is None and DEADLINE_MS <= d.elapsed_ms <= waited_ms
        assert waited_ms < WAIT_AT_MOST_MS, f"waited {waited_ms:.0f} ms for {DEADLINE_MS} ms"
        assert sample(gateway, "tradeguard_gateway_timeouts_total") == 1
        assert sample(gateway, "tradeguard_gateway_fallbacks_total", mode=mode,
                      action=action) == 1
        assert sample(gateway, "tradeguard_gateway_round_trip_seconds_count") == 0
        assert gateway.counts() == {"pending": 0, "awaiting": 1}  # waits for the engine's word
    logged = [r.getMessage() for r in caplog.records if sent["order_id"] in r.getMessage()]
    assert logged and '"decided_by":"gateway"' in logged[0] and f'"fallback":"{mode}"' in logged[0]

    # the order did reach the engine's topic, keyed and partitioned as the contract says
    (part, _, key, value), = read_topic(settings, "orders", lambda rs: len(rs) >= 1)
    assert value == sent and key == "acct-1"
    assert part == (murmur2(b"acct-1") & 0x7FFFFFFF) % settings.partitions


def test_bad_calls_get_clear_errors(settings):
    client = GatewayClient(settings, mode="fail_closed")
    with pytest.raises(RuntimeError, match="not started"):
        client.submit(order("acct-1"), 20)
    with pytest.raises(ValueError, match="mode must be one of"):
        GatewayClient(settings, mode="fail-sometimes")
    with client as gateway:
        bad = {k: v for k, v in order("acct-1").items() if k != "ticker"}
        with pytest.raises(RecordError, match="ticker: required field is missing"):
            gateway.submit(bad, 20)
        with pytest.raises(RecordError, match="side: must be one of"):
            gateway.submit({**order("acct-1"), "side": "short"}, 20)
        with pytest.raises(ValueError, match="deadline_ms must be a positive number"):
            gateway.submit(order("acct-1"), 0)
        first = order("acct-1")
        gateway.submit(first, 20)
        with pytest.raises(OrderInFlight, match=first["order_id"]):
            gateway.submit(first, 20)


def test_a_cancelled_submit_leaves_nothing_pending(settings):
    async def cancel_one(gateway) -> None:
        task = asyncio.create_task(gateway.submit_async(order("acct-1"), deadline_ms=30_000))
        deadline = time.monotonic() + 10
        while gateway.counts()["pending"] != 1:  # cancelled while in flight, not before
            assert time.monotonic() < deadline and not task.done(), gateway.counts()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with GatewayClient(settings, mode="fail_open") as gateway:
        asyncio.run(cancel_one(gateway))
        assert gateway.counts() == {"pending": 0, "awaiting": 0}
        assert sample(gateway, "tradeguard_gateway_in_flight") == 0


def test_an_order_that_cannot_be_queued_is_answered_by_the_mode_and_counted(settings, caplog):
    """The producer's local queue full until the deadline (one message of room, a broker it
    cannot reach): the order is answered by the mode, counted as a produce error and logged,
    not reported as sent."""
    dead_end = {"bootstrap.servers": "127.0.0.1:9", "queue.buffering.max.messages": 1,
                "message.timeout.ms": 60_000}
    with GatewayClient(settings, mode="fail_closed", producer_config=dead_end) as gateway, \
            caplog.at_level(logging.ERROR, "tradeguard.gateway"):
        queued = gateway.submit(order("acct-1"), deadline_ms=50)  # takes the one place
        assert (queued.action, queued.fallback) == ("hold", "fail_closed")
        assert sample(gateway, "tradeguard_gateway_produce_errors_total") == 0
        stuck = order("acct-2")
        d = gateway.submit(stuck, deadline_ms=50)
        assert (d.action, d.decided_by, d.fallback) == ("hold", "gateway", "fail_closed")
        assert sample(gateway, "tradeguard_gateway_produce_errors_total") == 1
        # nothing to wait for from the engine: the order never left
        assert gateway.counts() == {"pending": 0, "awaiting": 1}
        gateway.close(flush_timeout_s=0)  # the queued order can never leave: no 5 s flush
    assert any(f"order {stuck['order_id']} not sent" in r.getMessage() for r in caplog.records)


def test_a_control_no_stricter_than_the_fallback_is_not_counted_as_an_override(settings):
    """fail_closed already holds: a step-up (a hold) adds nothing, a freeze (a block) does."""
    producer = GatewayProducer(settings)
    producer.send("controls.accounts", control("account", "acct-step", "step_up"))
    producer.send("controls.accounts", control("account", "acct-frozen", "freeze"))
    producer.flush()
    with GatewayClient(settings, mode="fail_closed") as gateway:
        stepped = gateway.submit(order("acct-step", "7203", "sell"), deadline_ms=50)
        assert (stepped.action, stepped.fallback) == ("hold", "fail_closed")
        assert sample(gateway, "tradeguard_gateway_control_overrides_total",
                      reason="account_step_up") == 0
        frozen = gateway.submit(order("acct-frozen", "7203", "sell"), deadline_ms=30_000)
        assert frozen.action == "block"
        assert sample(gateway, "tradeguard_gateway_control_overrides_total",
                      reason="account_frozen") == 1


def control(kind: str, key: str, action: str, expires_at: int | None = None) -> dict:
    now = int(time.time() * 1000)
    if kind == "ticker":
        return {"ticker": key, "action": action, "reason": "test", "evidence": None,
                "expires_at": expires_at, "source": "test", "ts": now}
    return {"account_id": key, "action": action, "reason": "test", "evidence": None,
            "source": "test", "ts": now}


def test_halts_and_account_controls_are_enforced_at_the_gateway_without_the_engine(settings):
    producer = GatewayProducer(settings)
    now = int(time.time() * 1000)
    # before the client starts: it reads the control topics from the beginning
    producer.send("controls.tickers", control("ticker", "9999", "halt_buys", now + 600_000))
    producer.send("controls.tickers", control("ticker", "8888", "halt_buys", now - 1))  # expired
    producer.flush()
    with GatewayClient(settings, mode="fail_open") as gateway:
        # read in full before start() returns: the first order already sees the halt
        assert sample(gateway, "tradeguard_gateway_controls_ready") == 1
        assert sample(gateway, "tradeguard_gateway_control_records_total",
                      topic="controls.tickers") == 2
        first = gateway.submit(order("acct-1", "9999", "buy"), deadline_ms=30_000)
        assert (first.action, first.reasons[0]["code"]) == ("block", "ticker_halted")
        # after it started: followed as they come
        producer.send("controls.accounts", control("account", "acct-frozen", "freeze"))
        producer.send("controls.accounts", control("account", "acct-step", "step_up"))
        producer.send("controls.tickers", control("ticker", "7777", "halt_buys"))
        producer.send("controls.tickers", control("ticker", "7777", "release"))
        producer.send("controls.tickers", {**control("ticker", "6666", "halt_buys"),
                                           "action": "halt_everything"})  # breaks the contract
        producer.flush()
        wait_until(lambda: sample(gateway, "tradeguard_gateway_control_records_total",
                                  topic="controls.tickers") == 4
                   and sample(gateway, "tradeguard_gateway_control_records_total",
                              topic="controls.accounts") == 2, what="the controls")
        assert sample(gateway, "tradeguard_gateway_invalid_records_total",
                      topic="controls.tickers") == 1

        halted = gateway.submit(order("acct-1", "9999", "buy"), deadline_ms=30_000)
        assert (halted.action, halted.decided_by, halted.fallback) == ("block", "gateway", None)
        assert halted.reasons[0]["code"] == "ticker_halted"
        # a block needs no engine: no wait for the deadline (30 s), nor for any part of it
        assert halted.elapsed_ms < WAIT_AT_MOST_MS, halted.elapsed_ms

        frozen = gateway.submit(order("acct-frozen", "7203", "sell"), deadline_ms=30_000)
        assert (frozen.action, frozen.reasons[0]["code"]) == ("block", "account_frozen")

        stepped = gateway.submit(order("acct-step", "7203", "sell"), deadline_ms=100)
        assert (stepped.action, stepped.fallback) == ("hold", "fail_open")  # held, not allowed
        assert [r["code"] for r in stepped.reasons] == ["account_step_up", "engine_timeout"]

        for o in (order("acct-1", "9999", "sell"),   # halts stop buys only
                  order("acct-1", "8888", "buy"),    # past expires_at
                  order("acct-1", "7777", "buy"),    # released
                  order("acct-1", "6666", "buy")):   # the bad record changed nothing
            d = gateway.submit(o, deadline_ms=100)
            assert (d.action, d.fallback, d.review) == ("allow", "fail_open", True), o

        # a tombstone ends the account's control like a release
        tombstones = kafka.producer(settings)
        tombstones.produce(settings.topic("controls.accounts"), key=b"acct-frozen", value=None)
        tombstones.flush(10)
        wait_until(lambda: sample(gateway, "tradeguard_gateway_control_records_total",
                                  topic="controls.accounts") == 3, what="the tombstone")
        assert gateway.submit(order("acct-frozen", "7203", "sell"), 100).action == "allow"

        for reason, n in (("ticker_halted", 2), ("account_frozen", 1), ("account_step_up", 1)):
            assert sample(gateway, "tradeguard_gateway_control_overrides_total",
                          reason=reason) == n, reason


def engine_decision(o: dict, action: str, **extra) -> dict:
    """A decision record as the engine writes it (checked against the contract below)."""
    record = {"order_id": o["order_id"], "account_id": o["account_id"], "ticker": o["ticker"],
              "side": o["side"], "action": action, "score": 0.9 if action != "allow" else 0.1,
              "reasons": [{"code": "new_device", "value": 1.0}], "model_version": "m-test",
              "policy_version": "policy-test", "order_ts": o["ts"],
              "ts": int(time.time() * 1000), **extra}
    DECISION.validate(record)
    return record


def test_late_decisions_are_reconciled_once_and_repeats_dropped(settings):
    late: list = []
    producer = GatewayProducer(settings)
    with GatewayClient(settings, mode="fail_open", on_late_disagreement=late.append) as gateway:
        orders = [order(f"acct-{i}") for i in range(3)]
        answers = [gateway.submit(o, deadline_ms=50) for o in orders]
        assert all(a.action == "allow" and a.fallback == "fail_open" for a in answers)
        assert gateway.counts()["awaiting"] == 3

        disagree = engine_decision(orders[0], "block", policy_version="sha256:feed")
        producer.send("decisions", disagree)
        producer.send("decisions", engine_decision(orders[1], "allow"))          # agrees
        producer.send("decisions", engine_decision(orders[0], "block"))          # repeat
        producer.send("decisions", {**engine_decision(orders[2], "hold"), "action": "maybe"})
        producer.send("decisions", engine_decision(orders[2], "hold"))
        producer.send("decisions", engine_decision(order("acct-9"), "block"))    # not ours
        producer.flush()
        wait_until(lambda: sample(gateway, "tradeguard_gateway_late_decisions_total") == 3
                   and sample(gateway, "tradeguard_gateway_duplicate_decisions_total") == 1,
                   what="the late decisions")

        by_order = {d.gateway.order_id: d for d in late}  # partitions interleave freely
        assert {o: (d.engine["action"], d.engine_stricter) for o, d in by_order.items()} == {
            orders[0]["order_id"]: ("block", True), orders[2]["order_id"]: ("hold", True)}
        first = by_order[orders[0]["order_id"]]
        assert first.engine == disagree  # every field the engine sent, policy_version too
        assert first.gateway == answers[0]
        assert sample(gateway, "tradeguard_gateway_late_disagreements_total",
                      gateway_action="allow", engine_action="block") == 1
        assert sample(gateway, "tradeguard_gateway_late_disagreements_total",
                      gateway_action="allow", engine_action="hold") == 1
        assert sample(gateway, "tradeguard_gateway_invalid_records_total", topic="decisions") == 1
        assert gateway.counts() == {"pending": 0, "awaiting": 0}


def test_a_failing_callback_is_counted_and_the_client_goes_on(settings):
    def explode(_late):
        raise RuntimeError("the broker's cancel service is down")

    producer = GatewayProducer(settings)
    with GatewayClient(settings, mode="fail_closed", on_late_disagreement=explode) as gateway:
        first, second = order("acct-1"), order("acct-2")
        for o in (first, second):
            assert gateway.submit(o, deadline_ms=30).action == "hold"
            producer.send("decisions", engine_decision(o, "allow"))
        producer.flush()
        wait_until(lambda: sample(gateway, "tradeguard_gateway_callback_errors_total") == 2,
                   what="both callbacks")
        assert sample(gateway, "tradeguard_gateway_late_disagreements_total",
                      gateway_action="hold", engine_action="allow") == 2


def test_a_missing_topic_is_named_and_the_client_can_start_later(settings):
    elsewhere = settings.with_(topic_prefix="never-created.")
    client = GatewayClient(elsewhere, mode="fail_open")
    with pytest.raises(BrokerError, match="topic never-created.decisions does not exist"):
        client.start(timeout_s=5)
    with pytest.raises(RuntimeError, match="not started"):
        client.submit(order("acct-1"), 20)
    create_topics(elsewhere)
    with client as gateway:  # the same client starts once the topics are there
        assert gateway.submit(order("acct-1"), 20).fallback == "fail_open"
