"""Interop from Java: a reference gateway (gateways/java, Apache kafka-clients from Maven Central)
sends orders with the client's default partitioner, checks every decision against the published
JSON Schemas, keeps the control topics and verifies their signatures like streams/signing.py."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from gateway_helpers import assert_on_murmur2_partitions
from streams.signing import ControlKeys, canonical, sign
from tradeguard.kafka import clients as kafka

JAVA_DIR = Path(__file__).resolve().parents[2] / "gateways" / "java"
SCHEMAS = Path(__file__).resolve().parents[2] / "streams" / "jsonschema"


@pytest.fixture(scope="module")
def java_gateway() -> list[str]:
    """``java -cp ...`` for the built gateway; Maven builds it (offline once ~/.m2 has it)."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: the Java gateway test needs a JDK 17+ "
                    "and Maven (apt-get install openjdk-17-jdk-headless maven)")
    jar, lib = JAVA_DIR / "target" / "tradeguard-gateway.jar", JAVA_DIR / "target" / "lib"
    if not _up_to_date(jar, lib):  # .ci/run builds it first; Maven itself takes ~8 s to agree
        done = subprocess.run(["mvn", "-q", "-B", "package"], cwd=JAVA_DIR, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"mvn package failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    cp = f"{jar}:{lib}/*"
    return ["java", "-cp", cp, "dev.tradeguard.gateway.Gateway"]


def _up_to_date(jar: Path, lib: Path) -> bool:
    """The jar and its libraries exist and the jar is newer than the pom and every source."""
    if not jar.is_file() or not lib.is_dir() or not any(lib.iterdir()):
        return False
    inputs = [JAVA_DIR / "pom.xml", *(p for p in (JAVA_DIR / "src").rglob("*") if p.is_file())]
    return jar.stat().st_mtime > max(p.stat().st_mtime for p in inputs)


def java_canon(cmd: list[str], records: list[dict]) -> list[tuple[str, str]]:
    lines = "\n".join(orjson.dumps(r).decode() for r in records) + "\n"
    done = subprocess.run([*cmd, "canon"], input=lines, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "GATEWAY_CONTROL_KEY_FILE": ""})
    assert done.returncode == 0, done.stderr
    return [tuple(line.split("\t")) for line in done.stdout.splitlines()]


HALT = {"ticker": "7203", "action": "halt_buys", "reason": "coordinated buying — 3 accounts",
        "evidence": {"accounts": 3, "score": 0.8731, "tiny": 1.5e-7, "big": 1e21, "small": 0.000123, "smaller": 4.5e-6,
                     "just_below": 9.99e20, "int_float": 2500.0,
                     "ratio": 123456.789, "neg": -0.5, "ids": ["b", "a"], "none": None,
                     "flag": True, "esc": "tab\there \"q\" \\ \u0001 é 😀"},
        "expires_at": 1744761900000, "source": "engine", "ts": 1744761600000}


def test_java_canonical_json_and_signatures_match_python(java_gateway):
    keys = ControlKeys.development()
    signed = sign(HALT, keys)
    forged = {**signed, "action": "release"}
    other_key = sign(HALT, ControlKeys((b"some other key, 32 bytes long...",)))
    got = java_canon(java_gateway, [signed, forged, HALT, other_key])
    assert [g[0] for g in got] == [canonical(r).decode() for r in (signed, forged, HALT,
                                                                   other_key)]
    assert [g[1] for g in got] == ["ok", "mismatch", "missing", "unknown_key"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False)
    # every decimal magnitude, where ECMAScript switches between plain and exponent forms
    | st.builds(lambda m, e: m * 10.0 ** e, st.floats(-10, 10), st.integers(-25, 25)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


@hsettings(max_examples=1, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), _json, max_size=6), min_size=200,
                max_size=200))
def test_java_canonical_json_matches_rfc8785_on_generated_records(java_gateway, records):
    """One JVM for 200 generated records (floats of every magnitude, odd keys and strings)."""
    got = java_canon(java_gateway, records)
    for record, (java, _) in zip(records, got):
        assert java == canonical(record).decode(), record


@pytest.mark.broker
def test_a_java_gateway_gets_a_valid_decision_for_every_order(engine, java_gateway):
    settings, worker = engine
    run = f"java-{uuid.uuid4().hex[:8]}"
    # A forged control on the topic: the gateway must refuse it (the engine does too).
    producer = kafka.producer(settings)
    producer.produce(settings.topic("controls.accounts"), key=f"{run}-acct-0",
                     value=orjson.dumps({**sign({"account_id": f"{run}-acct-0",
                                                 "action": "freeze", "reason": "forged",
                                                 "source": "analyst", "ts": 1744761600000},
                                                ControlKeys.development()),
                                         "action": "release"}))
    # and a valid one, for an account with no orders in this run: kept in force.
    producer.produce(settings.topic("controls.accounts"), key=f"{run}-bystander",
                     value=orjson.dumps(sign({"account_id": f"{run}-bystander",
                                              "action": "freeze", "reason": "test",
                                              "source": "analyst", "ts": 1744761600000},
                                             ControlKeys.from_settings(settings))))
    producer.flush(10)
    env = {**os.environ, "GATEWAY_BROKERS": settings.bootstrap_servers,
           "GATEWAY_TOPIC_PREFIX": settings.topic_prefix, "GATEWAY_SCHEMA_DIR": str(SCHEMAS),
           "GATEWAY_ACCOUNTS": "20", "GATEWAY_ORDERS_PER_ACCOUNT": "6", "GATEWAY_RUN": run,
           "GATEWAY_TIMEOUT_MS": "60000", "GATEWAY_CONTROL_KEY_FILE": settings.control_key_file}
    done = subprocess.run(java_gateway, env=env, capture_output=True, text=True, timeout=180)
    assert done.stdout.strip(), f"no summary from the Java gateway:\n{done.stderr}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print({k: v for k, v in summary.items() if k != "order_ids"})
    assert done.returncode == 0, (summary, done.stderr, worker.log_tail())
    assert summary["decided"] == summary["orders"] == 120
    assert not summary["missing"] and not summary["repeated"] and not summary["problems"]
    assert summary["controls_rejected"].get("mismatch", 0) + summary["controls_rejected"].get(
        "schema", 0) >= 1, summary
    assert summary["controls_verified"] >= 1 and summary["controls_in_force"] >= 1, summary
    assert math.isfinite(summary["round_trip_ms_p50"]) and summary["round_trip_ms_p50"] >= 0

    # kafka-clients' default partitioner is the engine's murmur2, as the broker stored it
    assert_on_murmur2_partitions(settings, summary["order_ids"])
