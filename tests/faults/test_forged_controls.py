"""Who may change what the engine enforces: signed, in-order controls and signed labels only.

An attacker with a plain Kafka client writes to ``controls.*`` and ``feedback``.
Every forgery below would change a decision if it were obeyed, and each check
looks at that decision: the halts are an analyst's (``source`` console), which
spare no buyer (no ``halt_exempt`` for a clean session), so an obeyed forged
halt would block the clean customer's buy. Forged: unsigned, signed with a key
the engine does not hold, our key id with a wrong MAC, a genuine record with
one field altered, a tombstone; replayed: a genuine halt after its release, a
genuine release after a newer freeze. Labels: unsigned ``legit`` on a frozen
account and unsigned ``fraud`` on a clean one change nothing; the console's
signed label does. Then a keyed gateway client refuses the same forgeries.
"""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Producer

from streams.signing import ControlKeys, key_id, sign
from tests.faults.helpers import login, metric, now_ms, order, wait_until
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.cli.security import read_to_end, release

pytestmark = pytest.mark.broker

REFUSED = "tradeguard_control_records_refused_total"
DEV = ControlKeys.development()


def halt(ticker: str, ts: int, seq: int = 1) -> dict:
    """An analyst's halt: it spares no buyer, so obeying it blocks the clean customer."""
    return {"ticker": ticker, "action": "halt_buys", "reason": "forged?", "evidence": None,
            "expires_at": ts + 600_000, "source": "console:mallory", "ts": ts, "seq": seq}


def account(account_id: str, action: str, ts: int, seq: int) -> dict:
    return {"account_id": account_id, "action": action, "reason": "test", "evidence": None,
            "source": "console:sue", "ts": ts, "seq": seq}


def forgeries(ticker: str, t: int, keys: ControlKeys = DEV) -> list[dict]:
    """Every way to fake a halt signed with ``keys``: no signature, another key, our key id
    with a wrong MAC, an altered field under a genuine signature."""
    genuine = sign(halt(ticker, t), keys)
    return [halt(ticker, t),
            sign(halt(ticker, t), ControlKeys((b"m" * 32,))),
            {**halt(ticker, t), "signature": f"v1:{key_id(keys.keys[0])}:{'0' * 64}"},
            {**genuine, "expires_at": t + 9_999_999}]


def label(account_id: str, verdict: str, ts: int) -> dict:
    return {"account_id": account_id, "order_id": None, "label": verdict,
            "source": "console:sue", "ts": ts}


def test_forged_and_replayed_controls_and_unsigned_labels_change_nothing(engine_settings,
                                                                       start_worker):
    settings = engine_settings
    worker = start_worker(settings)
    gateway = GatewayProducer(settings)
    for a in ("acct-clean", "acct-frozen"):
        gateway.send("auth.events", login(a))
    gateway.flush()
    n = iter(range(1000))

    with TopicReader(settings, "decisions") as reader:
        def decide(ticker: str, who: str = "acct-clean", side: str = "buy") -> dict:
            o = order(f"o-{next(n)}", who, ticker=ticker, side=side)
            gateway.send("orders", o)
            gateway.flush()
            got = reader.read_until(lambda rs: any(d["order_id"] == o["order_id"]
                                                   for _, d in rs), 90)
            found = [d for _, d in got if d["order_id"] == o["order_id"]]
            assert found, f"no decision for {o['order_id']}\n{worker.log_tail()}"
            return found[0]

        assert decide("7203")["action"] == "allow"  # the worker is up

        # -- forged: four fake halts of 7203, and a tombstone that would end a freeze
        t = now_ms()
        for forged in forgeries("7203", t):
            gateway.send("controls.tickers", forged)
        # Genuine but unsequenced (as signed before issue 21): nothing to order it by.
        unsequenced = {k: v for k, v in halt("7203", t).items() if k != "seq"}
        gateway.send("controls.tickers", sign(unsequenced, DEV))
        raw = Producer({**settings.kafka_client_config(), "partitioner": "murmur2_random"})
        raw.produce(settings.topic("controls.accounts"), key=b"acct-clean", value=None)
        raw.flush(10)
        gateway.flush()
        wait_until(lambda: [metric(settings, REFUSED, topic="controls.tickers", reason=r)
                            for r in ("missing", "unknown_key", "mismatch", "unsequenced")
                            ] == [1, 1, 2, 1]
                   and metric(settings, REFUSED, topic="controls.accounts",
                              reason="tombstone") == 1, 30, "the forgeries counted",
                   worker.log_tail)
        toyota = decide("7203")
        assert toyota["action"] == "allow", toyota  # an obeyed forgery would block it

        # -- genuine: the same analyst's halt, signed, blocks this very buyer ...
        genuine = sign(halt("6758", now_ms()), DEV)
        gateway.send("controls.tickers", genuine)
        gateway.flush()
        wait_until(lambda: metric(settings, "tradeguard_active_ticker_halts") == 1, 30,
                   "the signed halt on the board", worker.log_tail)
        sony = decide("6758")
        assert (sony["action"], sony["reasons"][0]["code"]) == ("block", "ticker_halted")
        # ... the CLI's signed release (seq 2) ends it, and the genuine halt re-sent byte for
        # byte (seq 1) is a replay: refused, counted, the buy stays allowed.
        assert release(settings, "ticker", "6758", "test: released by hand")["seq"] == 2
        wait_until(lambda: metric(settings, "tradeguard_active_ticker_halts") == 0, 30,
                   "the release on the board", worker.log_tail)
        gateway.send("controls.tickers", genuine)
        gateway.flush()
        wait_until(lambda: metric(settings, REFUSED, topic="controls.tickers",
                                  reason="replayed") == 1, 30, "the replay counted",
                   worker.log_tail)
        assert decide("6758")["action"] == "allow"

        # -- an account frozen (1), released (2), frozen again (3): the genuine release
        # re-sent leaves it frozen.
        t = now_ms()
        records = [sign(account("acct-frozen", a, t + i, i + 1), DEV)
                   for i, a in enumerate(("freeze", "release", "freeze"))]
        for r in records:
            gateway.send("controls.accounts", r)
        gateway.send("controls.accounts", records[1])  # the replay
        gateway.flush()
        wait_until(lambda: metric(settings, REFUSED, topic="controls.accounts",
                                  reason="replayed") == 1, 30, "the replayed release counted",
                   worker.log_tail)
        frozen = decide("9984", "acct-frozen")
        assert (frozen["action"], frozen["reasons"][0]["code"]) == ("block", "account_frozen")

        # -- labels: unsigned ones train the models only. `legit` would release the frozen
        # account, `fraud` would freeze the clean one; neither does.
        gateway.send("feedback", label("acct-frozen", "legit", now_ms()))
        gateway.send("feedback", label("acct-clean", "fraud", now_ms()))
        gateway.flush()
        # The console's signed label (newer than the freeze) does act: once its release is
        # out, both unsigned labels before it on their partitions have been handled too.
        gateway.send("feedback", sign(label("acct-frozen", "legit", now_ms() + 1), DEV))
        gateway.flush()
        def from_labels() -> list[tuple[str, str]]:
            return [(r["account_id"], r["action"]) for r in (
                orjson.loads(m.value()) for m, _ in read_to_end(settings, "controls.accounts")
                if m.value() is not None) if r["source"] == "feedback"]
        wait_until(from_labels, 60, "the signed label's release", worker.log_tail)
        assert from_labels() == [("acct-frozen", "release")]
        assert decide("7203")["action"] == "allow"  # acct-clean was not frozen
        # Its own buy of 9984 above made the engine halt 9984 (a campaign buy: both accounts
        # log in from one device here), so the account itself is judged on a sell.
        after = decide("9984", "acct-frozen", side="sell")
        assert "account_frozen" not in [r["code"] for r in after["reasons"]], after


def test_a_gateway_holding_the_key_refuses_forgeries_and_replays(engine_settings, tmp_path):
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
    for forged in forgeries("2222", t, keys):
        gateway.send("controls.tickers", forged)
    gateway.send("controls.tickers", {**sign(halt("1111", t), keys), "ticker": "3333"})
    gateway.send("controls.tickers", sign({k: v for k, v in halt("5555", t).items()
                                           if k != "seq"}, keys))  # genuine, unsequenced
    # 4444 halted (1) then released (2); its halt re-sent after the release is a replay.
    halt_4444 = sign(halt("4444", t), keys)
    gateway.send("controls.tickers", halt_4444)
    gateway.send("controls.tickers", sign({"ticker": "4444", "action": "release",
                                           "reason": "r", "evidence": None, "expires_at": None,
                                           "source": "cli:oncall", "ts": t, "seq": 2}, keys))
    gateway.send("controls.tickers", halt_4444)
    gateway.flush()
    metrics = GatewayMetrics()
    replica = ControlsReplica(settings, metrics)
    replica.start(30)
    try:
        blocked = {tk: replica.verdict(order("o", "acct-1", ticker=tk), t + 1) is not None
                   for tk in ("1111", "2222", "3333", "4444", "5555")}
        assert blocked == {"1111": True, "2222": False, "3333": False, "4444": False,
                           "5555": False}
        assert metrics.registry.get_sample_value("tradeguard_gateway_invalid_records_total",
                                                 {"topic": "controls.tickers"}) == 7
    finally:
        replica.close()
