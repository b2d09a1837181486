"""Topic names are one vocabulary (issue 24): ``streams/topics.py`` declares each registry
name once, as a constant, and the package imports it rather than spelling it.

A misspelt literal (``"control.tickers"``) is a consumer that waits forever on a topic nobody
writes; a misspelt constant is an ImportError. The scan below reads every string constant in
``tradeguard/``, ``agents/`` and ``streams/`` (docstrings aside) and finds the registry's words.
Some of those words also name other things (a report's ``"orders"`` figures, the console's
``audit`` page, a label's ``"feedback"`` source): those uses are listed, per file and counted,
in ``NOT_TOPICS``, so a new one must be read and listed by whoever adds it.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from streams import topics
from streams.topics import TOPICS

pytestmark = pytest.mark.quick

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = sorted(p for d in ("tradeguard", "agents", "streams")
                    for p in (ROOT / d).rglob("*.py"))
REGISTRY = ROOT / "streams" / "topics.py"
NAMES = {t.name for t in TOPICS}

#: Words of the registry used for something else, per file: how many times each appears.
NOT_TOPICS: dict[str, dict[str, int]] = {
    # The schemas' own names (streams/topics.py imports this module, not the other way).
    "streams/records.py": {"feedback": 1, "deadletter": 1, "audit": 1},
    # The evaluate report's "orders" figures; the `audit` subcommand.
    "tradeguard/cli/main.py": {"orders": 1, "audit": 1},
    # Console pages and sections (URLs, fragment names), an account's recent "orders".
    "tradeguard/console/app.py": {"orders": 1, "audit": 3},
    "tradeguard/console/pages.py": {"audit": 13, "orders": 4},
    "tradeguard/console/view.py": {"orders": 2},
    # The feed's "audit" lookback (how far back it reads), not the topic it reads.
    "tradeguard/console/feed.py": {"audit": 2},
    # A control's source: "feedback" means an analyst's label caused it.
    "tradeguard/core/accounts.py": {"feedback": 1},
    "tradeguard/replay/compare.py": {"feedback": 1, "orders": 2},
    "tradeguard/replay/run.py": {"feedback": 1, "orders": 7, "decisions": 2},
    # Report and figure fields: counts of orders and decisions, the recorded decisions.
    "tradeguard/replay/plots.py": {"orders": 1},
    "tradeguard/replay/provenance.py": {"decisions": 5},
    "tradeguard/replay/report.py": {"orders": 8, "decisions": 1},
    "tradeguard/replay/shadow.py": {"decisions": 1, "orders": 1},
    "tradeguard/scorecard/engine.py": {"orders": 2},
    "tradeguard/scorecard/inprocess.py": {"decisions": 1, "orders": 4},
    "tradeguard/scorecard/report.py": {"orders": 3},
    "tradeguard/scorecard/run.py": {"decisions": 1},
    "tradeguard/scorecard/score.py": {"orders": 1},
    # The name of the labels' random stream (a seed), not the topic they go to.
    "tradeguard/simulator/generate.py": {"feedback": 1},
}


def _constant_name(topic_name: str) -> str:
    return topic_name.upper().replace(".", "_")


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
            and isinstance(node.body[0].value.value, str)}


def _spelled(path: Path) -> list[tuple[int, str]]:
    """Every registry name written as a string constant in ``path``, docstrings aside."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and n.value in NAMES and id(n) not in docs)


def test_every_registry_topic_has_its_constant_and_every_constant_a_topic():
    constants = {k: v for k, v in vars(topics).items()
                 if k.isupper() and isinstance(v, str)}
    expected = {_constant_name(t.name): t.name for t in TOPICS}
    assert constants == expected
    assert set(expected) <= set(topics.__all__)


def test_no_topic_name_is_spelled_outside_the_registry():
    found = {}
    for path in PRODUCTION:
        if path == REGISTRY:
            continue
        rel = path.relative_to(ROOT).as_posix()
        spelled = _spelled(path)
        if Counter(name for _, name in spelled) != Counter(NOT_TOPICS.get(rel, {})):
            found[rel] = spelled
    assert not found, (
        "registry topic names written as literals (import the constant from streams.topics; "
        "if the word means something else there, list it in NOT_TOPICS): "
        + "; ".join(f"{rel}: " + ", ".join(f"{line}:{name!r}" for line, name in spelled)
                    for rel, spelled in found.items()))
