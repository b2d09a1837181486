"""The command line as a user meets it: clear errors, real broker."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tradeguard.broker.embedded import free_port
from tradeguard.cli.main import main


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tradeguard.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)


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
