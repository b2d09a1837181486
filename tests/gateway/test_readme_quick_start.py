"""The README's gateway quick start, run as written against a live worker."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.worker_probe import wait_ready
from tests.faults.helpers import order
from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_gateway_snippet_gets_the_engines_decision(engine_settings, start_worker,
                                                              tmp_path):
    (snippet,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    key = tmp_path / "control.key"  # as deployed: the engine signs, the gateway checks
    key.write_text(secrets.token_hex(32) + "\n")
    engine_settings = engine_settings.with_(control_key_file=str(key))
    worker = start_worker(engine_settings)
    wait_ready(engine_settings, worker)
    # A worker in its stride: the snippet's deadline is a gateway's, not a cold start's.
    gateway = GatewayProducer(engine_settings)
    gateway.send("orders", order("warm-up", "acct-7"))
    gateway.flush()
    with TopicReader(engine_settings, "decisions") as reader:
        assert reader.read_until(lambda rs: rs, 60), worker.log_tail()
    env = {**os.environ, **worker.env()}
    done = subprocess.run([sys.executable, "-c", snippet], env=env, capture_output=True,
                          text=True, timeout=120, cwd=README.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    action_line, who_line = done.stdout.strip().splitlines()[-2:]
    assert action_line.split()[0] in ("allow", "hold", "block"), done.stdout
    assert who_line.split()[0] == "engine", (done.stdout, worker.log_tail())
