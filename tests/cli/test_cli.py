"""The command line as a user meets it: clear errors, real broker."""

from __future__ import annotations

import os
import socket
from pathlib import Path
import subprocess
import sys

import pytest

from tradeguard.broker.embedded import free_port
from tradeguard.cli.main import main


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    # An unreachable broker is given up on after 2 s here, not the default 10.
    env = {**os.environ, "TRADEGUARD_BROKER_WAIT_S": "2"}
    return subprocess.run([sys.executable, "-m", "tradeguard.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_unreachable_broker_is_a_clear_error():
    port = free_port()
    result = run_cli("topics", "create", "--broker", f"kafka://127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"cannot reach the Kafka broker at 127.0.0.1:{port}" in result.stderr


def test_worker_refuses_an_unreachable_broker():
    result = run_cli("worker", "--broker", f"kafka://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "cannot reach the Kafka broker" in result.stderr


def test_broker_port_taken_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli("broker", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr


def test_bad_flags_and_values(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "--brokr", "x"])
    assert exit_.value.code == 2 and "unrecognized arguments: --brokr" in capsys.readouterr().err
    assert main(["broker", "--listen", "nonsense"]) == 2
    assert "--listen expects HOST:PORT" in capsys.readouterr().err
    assert main(["topics", "create", "--broker", "localhost:9092"]) == 2
    assert "is not a URL" in capsys.readouterr().err


@pytest.mark.broker
def test_topics_create_is_idempotent(broker):
    first = run_cli("topics", "create", "--broker", broker.url)
    second = run_cli("topics", "create", "--broker", broker.url)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "orders" in first.stdout and "exists" in second.stdout
    assert "created" not in second.stdout


def test_contract_export_writes_the_schema_files(tmp_path):
    assert main(["contract", "export", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "order.schema.json").is_file() and (tmp_path / "topics.json").is_file()


@pytest.mark.broker
def test_controls_release_reaches_the_topic_and_bad_keys_are_refused(broker, capsys):
    from streams.signing import ControlKeys, check
    from tradeguard.kafka.admin import create_topics
    from tradeguard.broker.clients import TopicReader
    from tradeguard.runtime.settings import Settings

    create_topics(Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile))
    assert main(["controls", "release", "4592", "--broker", broker.url, "--operator", "oncall",
                 "--reason", "analyst: news confirmed"]) == 0
    assert main(["controls", "release-account", "cust-7", "--broker", broker.url]) == 0
    assert "published release (seq 1) for 4592" in capsys.readouterr().out
    with TopicReader(Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile),
                     "controls.tickers", "controls.accounts", "audit") as reader:
        records = reader.read_until(lambda rs: len(rs) >= 4, timeout_s=30)
    assert ("controls.tickers", "4592", "release", "analyst: news confirmed", "cli:oncall") in {
        (n, v.get("ticker"), v["action"], v["reason"], v["source"]) for n, v in records
        if n != "audit"}
    assert any(n == "controls.accounts" and v["account_id"] == "cust-7" for n, v in records)
    # The break-glass command audits itself (issue 21), in a signed chain of its own.
    (audit,) = [v for n, v in records if n == "audit" and v["target"] == "4592"]
    assert (audit["actor"], audit["auth"], audit["action"], audit["outcome"]) == (
        "oncall", "cli", "release_halt", "done")
    check(audit, ControlKeys.development())
    assert audit["writer"].startswith("cli:") and audit["chain_seq"] == 1
    assert main(["controls", "release", "", "--broker", broker.url]) == 2
    assert "ticker: must not be empty" in capsys.readouterr().err


def test_simulate_dumps_a_scenario_and_refuses_a_bad_one(tmp_path, capsys):
    out, truth = tmp_path / "short.jsonl", tmp_path / "truth.json"
    short = Path(__file__).resolve().parents[2] / "scenarios" / "short.toml"
    assert main(["simulate", "--scenario", str(short), "--dump", str(out),
                 "--truth", str(truth)]) == 0
    assert out.stat().st_size > 0 and truth.stat().st_size > 0
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = "abc"\n')
    assert main(["simulate", "--scenario", str(bad), "--dump", str(out)]) == 2
    assert "seed" in capsys.readouterr().err
