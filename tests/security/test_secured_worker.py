"""A worker and the gateway client on the secured broker, credentials from the environment and a
password file (never argv): the engine principal's ACLs are enough to run, the gateway's to
send an order and get the engine's decision back."""

from __future__ import annotations

import time
import uuid

import pytest

from tradeguard.broker.embedded import free_port
from tradeguard.gateway import GatewayClient

pytestmark = pytest.mark.broker


def test_a_worker_decides_for_a_gateway_over_sasl_ssl(secured, start_worker, tmp_path):
    key = tmp_path / "control.key"  # the engine signs controls, the gateway checks them
    key.write_text(uuid.uuid4().hex * 2 + "\n")
    engine = secured.settings("tradeguard", app_id=f"tradeguard-sec-{uuid.uuid4().hex[:6]}",
                              web_port=free_port(), web_host="127.0.0.1",
                              state_dir=tmp_path / "state", max_event_age_s=0,
                              control_key_file=str(key))
    # Only the environment carries the credentials: the password by file, the CA by path.
    worker = start_worker(engine, "secured-worker", **secured.env("tradeguard"))
    args = " ".join(open(f"/proc/{worker.process.pid}/cmdline").read().split("\0"))
    assert secured.passwords["tradeguard"] not in args
    gateway_settings = secured.settings("tradeguard-gateway", control_key_file=str(key))
    deadline = time.monotonic() + 120
    with GatewayClient(gateway_settings, mode="fail_closed") as gateway:
        while True:
            sent = {"order_id": f"sec-{uuid.uuid4().hex[:10]}", "account_id": "acct-sec",
                    "ticker": "7203", "side": "buy", "qty": 100, "price": 2500.0,
                    "margin": False, "session_id": "s-acct-sec",
                    "ts": int(time.time() * 1000)}
            decision = gateway.submit(sent, deadline_ms=2_000)
            if decision.decided_by == "engine":
                break
            assert worker.alive, f"the worker exited:\n{worker.log_tail()}"
            assert time.monotonic() < deadline, f"no engine decision:\n{worker.log_tail()}"
    assert decision.engine["order_id"] == sent["order_id"]
    assert worker.alive
    assert "AUTHORIZATION" not in worker.log_tail(200).upper(), worker.log_tail(200)
