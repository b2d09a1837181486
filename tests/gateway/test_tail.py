"""``tradeguard tail``: the real command, following the embedded broker's topics."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway_helpers import isolated_settings, order
from tradeguard.broker.clients import GatewayProducer
from tradeguard.gateway.tail import render_line

pytestmark = pytest.mark.broker


def tail(settings, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TRADEGUARD_BROKER": settings.broker,
           "TRADEGUARD_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.Popen([sys.executable, "-m", "tradeguard.cli.main", "tail", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def decision(o: dict, action: str) -> dict:
    return {"order_id": o["order_id"], "account_id": o["account_id"], "ticker": o["ticker"],
            "side": o["side"], "action": action, "score": 0.87,
            "reasons": [{"code": "new_device", "value": 1.0},
                        {"code": "liquidation_ratio", "value": 0.93}],
            "model_version": "m1", "policy_version": "policy-test", "order_ts": o["ts"],
            "ts": o["ts"] + 3}


@pytest.fixture
def settings(broker, tmp_path):
    return isolated_settings(broker, tmp_path, "tail")


def test_tail_filters_from_the_beginning(settings):
    producer = GatewayProducer(settings)
    sent = [order(f"acct-{i % 2}") for i in range(12)]
    actions = [("allow", "block", "hold")[i % 3] for i in range(12)]
    for o, action in zip(sent, actions):
        producer.send("decisions", decision(o, action))
    producer.flush()
    wanted = {o["order_id"] for o, a in zip(sent, actions)
              if o["account_id"] == "acct-1" and a == "block"}
    proc = tail(settings, "decisions", "--from-beginning", "--account", "acct-1", "--action",
                "block", "--limit", str(len(wanted)))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert {line.split("order_id=")[1].split()[0] for line in lines} == wanted
    for line in lines:
        assert " BLOCK " in line and "account_id=acct-1" in line and "key=acct-1" in line
        assert "reasons=[new_device=1,liquidation_ratio=0.93]" in line
    assert "from the beginning" in err


def test_tail_follows_new_records_only(settings):
    producer = GatewayProducer(settings)
    halt = {"ticker": "9999", "action": "halt_buys", "reason": "coordinated risky buying",
            "evidence": {"accounts": 3}, "expires_at": None, "source": "engine", "ts": 1}
    producer.send("controls.tickers", {**halt, "ticker": "1111"})  # before: not shown
    producer.flush()
    proc = tail(settings, "controls.tickers", "--limit", "2")
    try:
        banner = proc.stderr.readline()
        assert "following" in banner and "from the end" in banner, banner
        # it started at the end offsets before saying so: what comes now is new
        producer.send("controls.tickers", halt)
        producer.send("controls.tickers", {**halt, "action": "release", "expires_at": None,
                                           "reason": "released by hand"})
        producer.flush()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    first, second = out.splitlines()
    assert "key=9999 HALT_BUYS ticker=9999" in first
    assert 'reason="coordinated risky buying"' in first and 'evidence={"accounts":3}' in first
    assert "RELEASE" in second and "1111" not in out


def test_tail_names_what_is_wrong(settings):
    for args, message in (
            (["nosuch"], "unknown topic 'nosuch'"),
            (["orders", "--action", "hold"], "topic orders has no action field"),
            (["decisions", "--action", "maybe"], "one of ['allow', 'hold', 'block']")):
        proc = tail(settings, *args)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and message in err, (args, err)


def test_records_that_are_not_json_are_shown_not_skipped():
    line = render_line("state.snapshots", 0, 7, 0, b"accounts/0@1#0", b"\x00\x01zlib")
    assert line == ("- state.snapshots[0]@7 key=accounts/0@1#0 "
                    "<6 bytes, not JSON: b'\\x00\\x01zlib'>")
    assert render_line("controls.accounts", 1, 2, 0, b"acct-1", None).endswith("<tombstone>")
