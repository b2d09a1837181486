"""Who may change what the engine enforces: only signed control records count.

The issue's attack, replayed: a plain Kafka client (no operator, not the engine)
writes ``halt_buys`` for 7203 to ``controls.tickers``; a clean customer's Toyota
buy must still be allowed, and the forgery counted. Then a signed halt (as the
engine or the console writes it) is enforced, a forged release of it is not, and
``tradeguard controls release`` (signed by the CLI) ends it.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from streams.signing import ControlKeys, sign
from tests.faults.helpers import login, metric, now_ms, order, wait_until
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.kafka.controls import publish_release

pytestmark = pytest.mark.broker

REFUSED = "tradeguard_control_records_refused_total"


def halt(ticker: str, ts: int) -> dict:
    return {"ticker": ticker, "action": "halt_buys", "reason": "forged?", "evidence": None,
            "expires_at": ts + 600_000, "source": "engine", "ts": ts}


def test_only_signed_controls_are_enforced(engine_settings, start_worker):
    settings = engine_settings
    worker = start_worker(settings)
    gateway = GatewayProducer(settings)
    gateway.send("auth.events", login("acct-clean"))
    gateway.flush()
    n = iter(range(1000))

    with TopicReader(settings, "decisions") as reader:
        def decide(ticker: str) -> dict:
            o = order(f"o-{next(n)}", "acct-clean", ticker=ticker)
            gateway.send("orders", o)
            gateway.flush()
            got = reader.read_until(lambda rs: any(d["order_id"] == o["order_id"]
                                                   for _, d in rs), 90)
            found = [d for _, d in got if d["order_id"] == o["order_id"]]
            assert found, f"no decision for {o['order_id']}\n{worker.log_tail()}"
            return found[0]

        assert decide("7203")["action"] == "allow"  # the worker is up

        # Forged: unsigned (the plain client), signed with a key the engine does not
        # hold, and a tombstone that would end a freeze.
        t = now_ms()
        gateway.send("controls.tickers", halt("7203", t))
        gateway.send("controls.tickers", sign(halt("7203", t), ControlKeys((b"m" * 32,))))
        raw = Producer({**settings.kafka_client_config(), "partitioner": "murmur2_random"})
        raw.produce(settings.topic("controls.accounts"), key=b"acct-clean", value=None)
        raw.flush(10)
        gateway.flush()
        wait_until(lambda: metric(settings, REFUSED, topic="controls.tickers", reason="missing")
                   == 1 and metric(settings, REFUSED, topic="controls.tickers",
                                   reason="unknown_key") == 1
                   and metric(settings, REFUSED, topic="controls.accounts",
                              reason="tombstone") == 1, 30, "the forgeries counted",
                   worker.log_tail)
        toyota = decide("7203")
        assert toyota["action"] == "allow", toyota
        assert "ticker_halted" not in [r["code"] for r in toyota["reasons"]]
        assert "refused controls.tickers record" in worker.log_tail(400)

        # Signed with the control key (what the engine, the console and the CLI do): enforced.
        # (An analyst's halt, from the console: it spares no buyer, clean session or not.)
        gateway.send("controls.tickers", sign({**halt("6758", now_ms()), "source": "console"},
                                              ControlKeys.development()))
        gateway.flush()
        wait_until(lambda: metric(settings, "tradeguard_active_ticker_halts") == 1, 30,
                   "the signed halt on the board", worker.log_tail)
        sony = decide("6758")
        assert (sony["action"], sony["reasons"][0]["code"]) == ("block", "ticker_halted")

        # A forged release leaves the halt in force ...
        gateway.send("controls.tickers", {"ticker": "6758", "action": "release",
                                          "reason": "forged", "evidence": None,
                                          "expires_at": None, "source": "cli", "ts": now_ms()})
        gateway.flush()
        wait_until(lambda: metric(settings, REFUSED, topic="controls.tickers", reason="missing")
                   == 2, 30, "the forged release counted", worker.log_tail)
        assert decide("6758")["action"] == "block"

        # ... and the CLI's signed release ends it.
        record = publish_release(settings, "ticker", "6758", reason="test: released by hand")
        assert record["signature"].startswith("v1:")
        wait_until(lambda: metric(settings, "tradeguard_active_ticker_halts") == 0, 30,
                   "the release on the board", worker.log_tail)
        assert decide("6758")["action"] == "allow"
    assert metric(settings, "tradeguard_control_key_development") == 1



def test_a_gateway_holding_the_key_refuses_forgeries_too(engine_settings, tmp_path):
    """No engine here: the gateway client's own replica of the control topics."""
    from tradeguard.gateway.controls import ControlsReplica
    from tradeguard.gateway.metrics import GatewayMetrics

    key = tmp_path / "control.key"
    key.write_text("k" * 32 + "\n")
    settings = engine_settings.with_(control_key_file=str(key))
    keys = ControlKeys.from_file(key)
    gateway = GatewayProducer(settings)
    t = now_ms()
    gateway.send("controls.tickers", sign(halt("1111", t), keys))
    gateway.send("controls.tickers", halt("2222", t))  # unsigned
    gateway.send("controls.tickers", sign(halt("3333", t), ControlKeys.development()))
    gateway.flush()
    metrics = GatewayMetrics()
    replica = ControlsReplica(settings, metrics)
    replica.start(30)
    try:
        blocked = {tk: replica.verdict(order("o", "acct-1", ticker=tk), t + 1) is not None
                   for tk in ("1111", "2222", "3333")}
        assert blocked == {"1111": True, "2222": False, "3333": False}
        assert metrics.registry.get_sample_value("tradeguard_gateway_invalid_records_total",
                                                 {"topic": "controls.tickers"}) == 2
    finally:
        replica.close()
