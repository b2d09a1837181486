"""Event time far from the worker's clock is dead-lettered with the reason, not decided. Each
bound (7 days back, 5 minutes ahead) is probed just inside and just outside: an order a little
under 7 days old and one a little under 5 minutes ahead are decided, one a little over either is
dead-lettered naming `ts`; so is a quantity beyond the plausible bound (10^12 shares, naming
`qty`). A bound made ten times tighter or looser moves one probe to the wrong side."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

AGE_S, LEAD_S = 7 * 86400.0, 300.0
# "Just" inside or outside, in wall-clock terms: the worker judges a record against its own
# clock when it steps, a little after the test read its clock and sent it. The probes go to a
# warm worker, so that gap is well under a second; a minute of margin keeps the outside probes
# outside (and the inside ones inside) on a slow machine, while a bound ten times tighter
# (30 s ahead, 0.7 days back) or looser (50 min ahead, 70 days back) is minutes to days away.
MARGIN_MS = 60_000


def outcome_of(name: str, value: dict) -> str:
    """The order id a decision or a dead letter is about."""
    if name == "decisions":
        return value["order_id"]
    return orjson.loads(base64.b64decode(value["original_b64"]))["order_id"]


def test_event_time_just_inside_each_bound_is_decided_and_just_outside_is_deadlettered(
        engine_settings, start_worker):
    settings = engine_settings.with_(max_event_age_s=AGE_S, max_event_lead_s=LEAD_S)
    worker = start_worker(settings)
    gateway = GatewayProducer(settings)
    base = {"account_id": "acct-t", "ticker": "7203", "side": "buy", "qty": 100,
            "price": 2500.0, "margin": False, "session_id": None}
    with TopicReader(settings, "decisions", "deadletter") as reader:
        got: list[tuple[str, dict]] = []

        def until_all_answered(ids: set[str], timeout_s: float = 60) -> None:
            """Every order has its one outcome (decided or dead): a probe on the wrong side
            of a bound ends the wait as soon as a correct one would."""
            got.extend(reader.read_until(
                lambda rs: ids <= {outcome_of(n, v) for n, v in got + rs}, timeout_s))
            missing = ids - {outcome_of(n, v) for n, v in got}
            assert not missing, f"no outcome for {missing}\n{worker.log_tail()}"

        gateway.send("orders", {**base, "order_id": "warm", "ts": int(time.time() * 1000)})
        gateway.flush()
        until_all_answered({"warm"}, 180)  # the worker's start-up (kernels compile cold)
        now = int(time.time() * 1000)
        probes = {
            "old-inside": now - int(AGE_S * 1000) + MARGIN_MS,
            "old-outside": now - int(AGE_S * 1000) - MARGIN_MS,
            "ahead-inside": now + int(LEAD_S * 1000) - MARGIN_MS,
            "ahead-outside": now + int(LEAD_S * 1000) + MARGIN_MS,
            "now": now,
        }
        for order_id, ts in probes.items():
            gateway.send("orders", {**base, "order_id": order_id, "ts": ts})
        gateway.send("orders", {**base, "order_id": "huge", "ts": now, "qty": 10**12})
        gateway.flush()
        until_all_answered({*probes, "huge"})
    outcomes: dict[str, list[tuple[str, dict]]] = {}
    for n, v in got:
        outcomes.setdefault(outcome_of(n, v), []).append((n, v))
    assert all(len(o) == 1 for o in outcomes.values()), outcomes  # one outcome each
    kind = {oid: o[0][0] for oid, o in outcomes.items()}
    assert kind == {"warm": "decisions", "now": "decisions", "old-inside": "decisions",
                    "ahead-inside": "decisions", "old-outside": "deadletter",
                    "ahead-outside": "deadletter", "huge": "deadletter"}, worker.log_tail()
    dead = {oid: o[0][1] for oid, o in outcomes.items() if o[0][0] == "deadletter"}
    assert {oid: d["field"] for oid, d in dead.items()} == {
        "old-outside": "ts", "ahead-outside": "ts", "huge": "qty"}
    assert dead["ahead-outside"]["error"] == (
        f"ts: event time {probes['ahead-outside']} is more than 300 s ahead of the worker's clock")
    assert dead["old-outside"]["error"] == (
        f"ts: event time {probes['old-outside']} is more than 604800 s old")
