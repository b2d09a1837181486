"""Interop from another language: a Node gateway with KafkaJS (from the npm registry) logs
customers in, sends orders and checks every decision against the published JSON Schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from gateway_helpers import assert_on_murmur2_partitions

pytestmark = pytest.mark.broker

NODE_DIR = Path(__file__).parent / "node"
SCHEMAS = Path(__file__).resolve().parents[2] / "streams" / "jsonschema"


def installed(package: str) -> str | None:
    try:
        return json.loads((NODE_DIR / "node_modules" / package / "package.json").read_text())[
            "version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def node_gateway() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: the KafkaJS interop test needs Node.js "
                    "and npm (apt-get install nodejs npm)")
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    if any(installed(name) != version for name, version in pinned.items()):
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return NODE_DIR / "gateway.mjs"


def test_a_kafkajs_gateway_gets_a_valid_decision_for_every_order(engine, node_gateway):
    settings, worker = engine
    run = f"node-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GATEWAY_BROKERS": settings.bootstrap_servers,
           "GATEWAY_TOPIC_PREFIX": settings.topic_prefix, "GATEWAY_SCHEMA_DIR": str(SCHEMAS),
           "GATEWAY_ACCOUNTS": "20", "GATEWAY_ORDERS_PER_ACCOUNT": "6", "GATEWAY_RUN": run,
           "GATEWAY_TIMEOUT_MS": "60000"}
    done = subprocess.run(["node", str(node_gateway)], env=env, capture_output=True, text=True,
                          timeout=150)
    assert done.stdout.strip(), f"no summary from the Node gateway:\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print({k: v for k, v in summary.items() if k != "order_ids"})
    assert done.returncode == 0, (summary, done.stderr, worker.log_tail())
    assert summary["decided"] == summary["orders"] == 120
    assert not summary["missing"] and not summary["repeated"] and not summary["problems"]

    # KafkaJS's partitioner agrees with the engine's (Java's murmur2), as the broker stored it
    assert_on_murmur2_partitions(settings, summary["order_ids"])
