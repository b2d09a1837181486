"""The house's layering, checked on the code itself (issue 24).

- Every Kafka client is built in the Kafka edge (``tradeguard/kafka/``); the test
  harness (``tradeguard/broker/``: brokers we start, worker processes, test clients)
  builds its own.
- A gateway imports the gateway client without Numba, River or Faust.
- Production code does not import the harness; the demo and the tools that start
  their own broker and workers (``tradeguard demo``, ``evaluate``, ``simulate``,
  ``tradeguard broker``) are the harness's users and are listed by name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [p for d in ("tradeguard", "agents", "streams") for p in (ROOT / d).rglob("*.py")]
EDGE = ROOT / "tradeguard" / "kafka"
HARNESS = ROOT / "tradeguard" / "broker"
#: Commands that start brokers and workers of their own: users of the harness by design.
HARNESS_USERS = {"tradeguard/demo/run.py", "tradeguard/console/demo.py",
                 "tradeguard/scorecard/run.py", "tradeguard/simulator/replay.py",
                 "tradeguard/cli/main.py"}
CLIENTS = {"Consumer", "Producer", "AdminClient", "DeserializingConsumer",
           "SerializingProducer"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _calls(tree: ast.AST) -> set[str]:
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr
            for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, (ast.Name, ast.Attribute))}


def _imports(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
        elif isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
    return out


def test_kafka_clients_are_built_only_in_the_edge_and_the_harness():
    builders = {_rel(p) for p in PRODUCTION
                if p.is_relative_to(EDGE) is False and p.is_relative_to(HARNESS) is False
                and CLIENTS & _calls(ast.parse(p.read_text()))}
    assert builders == set(), f"Kafka clients built outside tradeguard/kafka: {sorted(builders)}"


def test_production_code_does_not_import_the_harness():
    offenders = {_rel(p) for p in PRODUCTION
                 if not p.is_relative_to(HARNESS) and _rel(p) not in HARNESS_USERS
                 and any(m == "tradeguard.broker" or m.startswith("tradeguard.broker.")
                         for m in _imports(ast.parse(p.read_text())))}
    assert offenders == set(), f"production modules importing the harness: {sorted(offenders)}"


@pytest.mark.parametrize("module", ["tradeguard.gateway", "tradeguard.gateway.client",
                                    "tradeguard.gateway.controls", "tradeguard.kafka"])
def test_the_gateway_client_imports_without_numba_river_or_faust(module):
    code = (f"import sys, {module}; "
            "print(sorted(m for m in ('numba', 'river', 'faust', 'mode') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{module} pulls in {done.stdout.strip()}"
