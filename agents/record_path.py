"""The record path as a Faust agent: one event per poll, fed by the librdkafka thread.

The consumer thread (``agents/pipe.py``) puts each poll of thousands of records, and
each rebalance marker, on an in-memory Faust channel with ``Channel.put``: the object
itself goes on the agent's queue, with no Kafka message, no Faust ``Event`` and no
serialisation (a Faust stream yields a value that is not an ``Event`` as it is). The
channel holds two polls: when the agent is that far behind, the thread's put waits,
and so does its next fetch.

One agent drives both sides of the step: within a poll the ticker sides (trades, flow)
are decided before the account sides (orders, logins, labels), and the step's
provenance names both; split across two agents, that order and that record would
have to be rebuilt between them.

Faust supervises it: an agent that raises is restarted by its supervisor
(``OneForOneSupervisor``) on the same channel, so no queued poll is lost; before it
raises, ``EngineService.step_failed`` drops what the failed step touched and has the
worker read it again (see there). While the agent is
down the worker's liveness, hence readiness, says so (``agents/web.py``).
"""

from __future__ import annotations

import os
from typing import Any

import faust
from mode import OneForOneSupervisor

from agents.engine import EngineService

__all__ = ["FAULT_ENV", "register"]

#: Polls the consumer thread may be ahead of the agent (the channel's size).
DEPTH = 2

#: Test-only fault hook (tests/engine/test_agent_supervision.py): the step that decides
#: the order with this id raises, once per process, after its cores have decided it and
#: before its decisions are produced. Unset in every deployment.
FAULT_ENV = "TRADEGUARD_TEST_STEP_RAISES_AT_ORDER"


def register(app: faust.App, engine: EngineService) -> Any:
    """Declare the record-path agent on ``app``; it hands every item to ``engine``."""
    polls = app.channel(maxsize=DEPTH)

    @app.agent(polls, name="record-path", supervisor_strategy=OneForOneSupervisor)
    async def record_path(items: faust.StreamT) -> None:
        # Faust's flow control pauses its own consumer's streams across its rebalances,
        # and starts paused; that consumer is off here and our rebalances travel in the
        # channel as markers: open it once (resuming clears queues, so only if closed).
        if not app.flow_control.is_active():
            app.flow_control.resume()
        engine.attach(items.channel)
        await engine.consuming.wait()
        async for item in items:
            try:
                await engine.handle(item)
            except Exception as exc:
                engine.step_failed(exc)
                raise  # the supervisor restarts this agent on the same channel

    fault = os.environ.get(FAULT_ENV)
    if fault:
        _raise_once_at(engine, fault)
    return record_path


class InjectedFault(RuntimeError):
    """Raised by the test-only fault hook (``FAULT_ENV``)."""


def _raise_once_at(engine: EngineService, order_id: str) -> None:
    publish, fired = engine._publish, []

    def publish_or_raise(out: Any, delivery: Any) -> None:
        if not fired and order_id in set(out.decisions.order_id):
            fired.append(order_id)
            raise InjectedFault(f"test fault: the step deciding {order_id} raises")
        publish(out, delivery)

    engine._publish = publish_or_raise
