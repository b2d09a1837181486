"""Health, readiness and metrics on the Faust web server (``TRADEGUARD_WEB_PORT``).

    /healthz   liveness: 503 when the event loop stalls or an agent has crashed
    /readyz    readiness: 200 once partitions are assigned, the control board is
               restored and the consumer is consuming
    /metrics   Prometheus text exposition, every series ``tradeguard_*``

Liveness never depends on Kafka: a broker outage makes workers unready (no
traffic, no scale-in decisions on them), not restarted in a loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

from agents.context import WorkerContext
from tradeguard.runtime.metrics import CONTENT_TYPE

__all__ = ["Heartbeat", "register"]

log = logging.getLogger("tradeguard.web")

#: A beat older than this means the loop was blocked that long: a wedged worker.
#: Far above any batch (milliseconds), below the liveness probe's failure window.
STALL_AFTER_S = 10.0


@dataclass
class Heartbeat:
    """The event loop's pulse: a task beats every ``interval_s``; late beats measure loop lag.

    >>> hb = Heartbeat(interval_s=1.0, started=100.0)
    >>> hb.beat(now=101.25); hb.lag_s
    0.25
    >>> hb.stalled(now=105.0, after_s=10.0), hb.stalled(now=112.0, after_s=10.0)
    (False, True)
    """

    interval_s: float = 1.0
    started: float = 0.0
    last: float = 0.0
    lag_s: float = 0.0

    def __post_init__(self) -> None:
        self.last = self.started

    def beat(self, now: float) -> None:
        self.lag_s = max(0.0, now - self.last - self.interval_s)
        self.last = now

    def stalled(self, now: float, after_s: float) -> bool:
        return now - self.last > after_s


def crashed_agents(app: Any) -> list[str]:
    """Names of agents with an actor that died and has not been restarted (yet)."""
    out = []
    for agent in app.agents.values():
        if agent.should_stop:
            continue
        # The actors its supervisor runs now (Faust keeps no public view of them): one it
        # replaced stays in ``_actors``, a weak set, until the collector frees it.
        supervisor = getattr(agent, "supervisor", None)
        actors = supervisor._services if supervisor is not None else agent._actors
        for actor in list(actors):
            task = getattr(actor, "actor_task", None)
            if actor.crashed or (task is not None and task.done()):
                out.append(agent.name)
                break
    return out


def liveness(ctx: WorkerContext, hb: Heartbeat, now: float) -> dict[str, Any]:
    crashed = crashed_agents(ctx.app)
    checks = {
        "event_loop": not hb.stalled(now, STALL_AFTER_S),
        "agents": not crashed,
        "app": not ctx.app.crashed,
        "engine": not getattr(ctx.engine, "crashed", False),
        # The consumer thread polls for the whole life of the worker; should it end, the
        # worker decides nothing while everything else looks fine (agents/pipe.py).
        "consumer": getattr(getattr(ctx.engine, "pipe", None), "polling", True),
    }
    return {"live": all(checks.values()), "checks": checks, "crashed_agents": crashed,
            "heartbeat_age_s": round(now - hb.last, 3), "loop_lag_s": round(hb.lag_s, 3)}


def readiness(ctx: WorkerContext, live: bool) -> dict[str, Any]:
    engine = ctx.engine
    pipe = getattr(engine, "pipe", None)
    assigned = set(pipe.assignment) if pipe is not None else set()
    checks = {
        "live": live,
        "control_board_restored": ctx.board_ready.is_set(),
        "consuming": bool(getattr(engine, "started_consuming", False)),
        "partitions_assigned": bool(assigned),
    }
    return {"ready": all(checks.values()), "checks": checks,
            "partitions": len({p for _, p in assigned})}


def consumer_lag(ctx: WorkerContext) -> dict[tuple[str, int], int]:
    """Per assigned partition: the highwater the last fetch carried minus the next offset to
    decide. Read from what the consumer thread recorded: no librdkafka call from the event
    loop (one can block it while the consumer thread polls), no broker round trip."""
    pipe = getattr(ctx.engine, "pipe", None)
    if pipe is None:
        return {}
    out = {}
    try:  # both are updated by the consumer thread; a rebalance mid-copy: next scrape
        highs, assigned = dict(pipe.high_watermarks), sorted(pipe.assignment)
    except RuntimeError:
        return {}
    for tp in assigned:
        high, position = highs.get(tp), pipe.positions.get(tp)
        consumed = pipe.consumed.get(tp)
        if position is not None and consumed is not None:
            # Past transaction markers the consumer skipped after the last record decided.
            position = max(position, consumed)
        if high is not None and position is not None:
            out[tp] = max(0, high - position)
    return out


def register(ctx: WorkerContext) -> Heartbeat:
    """Add the heartbeat task and the three views to ``ctx.app``."""
    app = ctx.app
    hb = Heartbeat(interval_s=1.0, started=time.monotonic())
    r = ctx.metrics.registry
    gauges = {
        "halts": Gauge("tradeguard_active_ticker_halts", "Tickers with a buy halt in force.",
                       registry=r),
        "controls": Gauge("tradeguard_active_account_controls",
                          "Accounts under a step-up or freeze, by action.", ["action"],
                          registry=r),
        "ready": Gauge("tradeguard_ready", "1 when /readyz would answer 200.", registry=r),
        "partitions": Gauge("tradeguard_assigned_partitions",
                            "Input partitions assigned to this worker.", registry=r),
        "loop_lag": Gauge("tradeguard_event_loop_lag_seconds",
                          "How late the last 1 s heartbeat fired.", registry=r),
        "lag": Gauge("tradeguard_consumer_lag",
                     "Records not yet decided per assigned partition (highwater - position).",
                     ["topic", "partition"], registry=r),
        # Registered at the first snapshot (in _scrape): an unlabelled gauge is exposed
        # from creation, and a 0 before any snapshot would claim a fresh one.
        "snapshot_age_pending": Gauge("tradeguard_last_snapshot_age_seconds",
                                      "Seconds since this worker last wrote a state snapshot.",
                                      registry=None),
    }

    @app.task
    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(hb.interval_s)
            hb.beat(time.monotonic())

    @app.page("/healthz")
    async def healthz(web, request):
        body = liveness(ctx, hb, time.monotonic())
        if not body["live"]:
            log.error("liveness failing: %s", body)
        return web.json(body, status=200 if body["live"] else 503)

    @app.page("/readyz")
    async def readyz(web, request):
        body = readiness(ctx, liveness(ctx, hb, time.monotonic())["live"])
        return web.json(body, status=200 if body["ready"] else 503)

    @app.page("/metrics")
    async def metrics(web, request):
        _scrape(ctx, hb, gauges)
        return web.bytes(ctx.metrics.exposition(), content_type=CONTENT_TYPE.split(";")[0])

    return hb


def _scrape(ctx: WorkerContext, hb: Heartbeat, gauges: dict[str, Gauge]) -> None:
    """Values read at scrape time: controls in force, readiness, lag."""
    now = int(time.time() * 1000)
    board = ctx.shared.board
    gauges["halts"].set(len(board.active_halts(now)))
    by_action = {"step_up": 0, "freeze": 0}
    for c in board.account_controls():
        by_action[c["action"]] = by_action.get(c["action"], 0) + 1
    for action, n in by_action.items():
        gauges["controls"].labels(action=action).set(n)
    ready = readiness(ctx, liveness(ctx, hb, time.monotonic())["live"])
    gauges["ready"].set(int(ready["ready"]))
    gauges["partitions"].set(ready["partitions"])
    gauges["loop_lag"].set(round(hb.lag_s, 6))
    gauges["lag"].clear()
    for (topic, partition), n in consumer_lag(ctx).items():
        gauges["lag"].labels(topic=topic, partition=str(partition)).set(n)
    last = getattr(ctx.engine, "last_snapshot_at", None)
    if last is not None:  # absent until a snapshot exists: never faked
        if "snapshot_age_pending" in gauges:
            gauges["snapshot_age"] = gauges.pop("snapshot_age_pending")
            ctx.metrics.registry.register(gauges["snapshot_age"])
        gauges["snapshot_age"].set(round(max(0.0, time.time() - last), 3))
