"""Readiness, and deciding anything at all, wait for the replicated control board.

deploy/README.md: /readyz answers 200 only when the control board (halts,
account controls, ticker profiles) is restored; the engine consumes nothing
before it, so no order is decided against a board missing a halt in force.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import agents.engine
from agents.engine import EngineService
from agents.web import readiness
from tradeguard.core import Shared
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.metrics import EngineMetrics
from tradeguard.runtime.settings import Settings
import pytest

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def _context(board_restored: bool) -> SimpleNamespace:
    board_ready = asyncio.Event()
    if board_restored:
        board_ready.set()
    pipe = SimpleNamespace(assignment={("t.orders", 0), ("t.auth.events", 0)})
    engine = SimpleNamespace(pipe=pipe, started_consuming=True)
    return SimpleNamespace(engine=engine, board_ready=board_ready)


def test_not_ready_until_the_board_is_restored_whatever_else_holds():
    body = readiness(_context(board_restored=False), live=True)
    assert body["ready"] is False
    assert body["checks"] == {"live": True, "control_board_restored": False, "consuming": True,
                              "partitions_assigned": True}
    ready = readiness(_context(board_restored=True), live=True)
    assert ready["ready"] is True and ready["partitions"] == 1


def test_the_engine_starts_consuming_only_once_the_board_is_restored(monkeypatch):
    started: list[str] = []

    class Pipe:  # stands in for the Kafka edge: records when consumption starts
        def __init__(self, *args, **kwargs) -> None:
            pass

        def start(self) -> None:
            started.append("consuming")

    monkeypatch.setattr(agents.engine, "KafkaPipe", Pipe)
    monkeypatch.setattr(agents.engine.gc, "freeze", lambda: None)  # leave the test's heap alone

    async def scenario() -> None:
        board_ready = asyncio.Event()
        engine = EngineService(Settings.from_env(env={}), Shared(), PolicyFile(None),
                               EngineMetrics(), board_ready, loop=asyncio.get_running_loop())
        engine.attach(asyncio.Queue())  # where the record-path agent would listen
        waiting = asyncio.ensure_future(engine._start_when_board_ready())
        # Wall clock on purpose: that nothing starts can only be watched for a while; 0.2 s
        # gives the waiting task many turns of the loop to start too early.
        await asyncio.sleep(0.2)
        assert started == [] and engine.pipe is None and not engine.started_consuming
        board_ready.set()
        await asyncio.wait_for(waiting, 5)
        assert started == ["consuming"] and engine.started_consuming

    asyncio.run(scenario())
