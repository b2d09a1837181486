"""Shadow mode in a real worker: every decided order also gets a decision under the candidate
policy on `decisions.shadow`, carrying that policy's version; the live decisions are unchanged."""

from __future__ import annotations

import pytest

from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

T0 = 1_760_000_000_000


def test_the_worker_publishes_shadow_decisions(engine_settings, start_worker, tmp_path):
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[order]\nhold_at = 0.0\nblock_at = 0.95\n")
    settings = engine_settings.with_(shadow_policy_file=str(candidate))
    start_worker(settings)
    gateway = GatewayProducer(settings)
    for i in range(20):
        gateway.send("auth.events", {"account_id": f"acct-{i}", "event": "login_success",
                                     "session_id": f"s{i}", "ip": "10.0.0.1",
                                     "device_id": f"d{i}", "user_agent": "ua", "country": "JP",
                                     "asn": 2516, "ts": T0 + i})
        gateway.send("orders", {"order_id": f"o-{i}", "account_id": f"acct-{i}",
                                "ticker": "7203", "side": "buy", "qty": 100, "price": 2500.0,
                                "margin": False, "session_id": f"s{i}", "ts": T0 + 1000 + i})
    gateway.flush()
    with TopicReader(settings, "decisions", "decisions.shadow") as reader:
        got = reader.read_until(
            lambda rs: sum(n == "decisions.shadow" for n, _ in rs) >= 20
            and sum(n == "decisions" for n, _ in rs) >= 20, 90)
    live = {d["order_id"]: d for n, d in got if n == "decisions"}
    shadow = {d["order_id"]: d for n, d in got if n == "decisions.shadow"}
    assert set(shadow) == set(live) == {f"o-{i}" for i in range(20)}
    assert len({d["policy_version"] for d in live.values()}) == 1
    assert {d["policy_version"] for d in shadow.values()} != \
        {d["policy_version"] for d in live.values()}
    assert all(shadow[o]["score"] == live[o]["score"] for o in live)
    assert all(d["action"] == "hold" for d in shadow.values())
    assert all(d["action"] == "allow" for d in live.values())
