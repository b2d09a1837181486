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

from agents.context import WorkerContext, now_ms
from streams.topics import TOPICS
from tradeguard.runtime.metrics import MetricFamily, counter_families, render

__all__ = ["Heartbeat", "register"]

log = logging.getLogger("tradeguard.web")

#: A beat older than this means the loop was blocked that long: a wedged worker.
#: Far above any batch (milliseconds), below the liveness probe's failure window.
STALL_AFTER_S = 10.0
#: Lag look-ups go through the consumer thread and the broker; a scrape must not hang.
LAG_TIMEOUT_S = 5.0
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


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
        for actor in list(agent._actors):  # Faust keeps no public view of them
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
    }
    return {"live": all(checks.values()), "checks": checks, "crashed_agents": crashed,
            "heartbeat_age_s": round(now - hb.last, 3), "loop_lag_s": round(hb.lag_s, 3)}


def readiness(ctx: WorkerContext, live: bool) -> dict[str, Any]:
    app = ctx.app
    assigned = _assignment(ctx)
    checks = {
        "live": live,
        "partitions_assigned": bool(assigned),
        "rebalance_done": not app.rebalancing,
        "control_board_restored": ctx.board_ready.is_set(),
        "consuming": bool(assigned) and app.consumer.can_resume_flow.is_set(),
    }
    return {"ready": all(checks.values()), "checks": checks, "partitions": len(assigned)}


def _assignment(ctx: WorkerContext) -> set:
    """Assigned partitions of registry topics (Faust's own leader topic left out)."""
    ours = {ctx.settings.topic(t.name) for t in TOPICS}
    try:
        return {tp for tp in ctx.app.consumer.assignment() if tp.topic in ours}
    except Exception:  # consumer thread not started yet (ConsumerNotStarted)
        return set()


async def consumer_lag(ctx: WorkerContext) -> dict[tuple[str, int], int]:
    """Per assigned partition: highwater minus the consumer's position (records not yet read).

    The highwater is the one the last fetch response carried (no extra broker
    round trip); a partition not fetched yet has none and is left out.
    """
    consumer = ctx.app.consumer
    highwaters = {tp: hw for tp in _assignment(ctx) if (hw := consumer.highwater(tp)) is not None}
    tps = sorted(highwaters)
    positions = await asyncio.gather(*(consumer.position(tp) for tp in tps))
    return {(tp.topic, tp.partition): max(0, highwaters[tp] - pos)
            for tp, pos in zip(tps, positions) if pos is not None}


def register(ctx: WorkerContext) -> Heartbeat:
    """Add the heartbeat task and the three views to ``ctx.app``."""
    app = ctx.app
    hb = Heartbeat(interval_s=1.0, started=time.monotonic())

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
        text = render(await _families(ctx, hb))
        return web.text(text, content_type=PROMETHEUS_TEXT)

    return hb


async def _families(ctx: WorkerContext, hb: Heartbeat) -> list[MetricFamily]:
    now = now_ms()
    fams = counter_families(ctx.counters)
    fams += ctx.metrics.families()
    if ctx.last_snapshot_at is not None:  # absent until a snapshot exists: never faked
        fams.append(MetricFamily("tradeguard_last_snapshot_age_seconds", "gauge",
                                 "Seconds since this worker last wrote a state snapshot.")
                    .add(round(max(0.0, now / 1000.0 - ctx.last_snapshot_at), 3)))
    halts = ctx.board.active_halts(now)
    fams.append(MetricFamily("tradeguard_active_ticker_halts", "gauge",
                             "Tickers with a buy halt in force.").add(len(halts)))
    controls = MetricFamily("tradeguard_active_account_controls", "gauge",
                            "Accounts under a step-up or freeze, by action.")
    by_action: dict[str, int] = {"step_up": 0, "freeze": 0}
    for c in ctx.board.account_controls():
        by_action[c["action"]] = by_action.get(c["action"], 0) + 1
    for action, n in sorted(by_action.items()):
        controls.add(n, action=action)
    fams.append(controls)

    ready = readiness(ctx, liveness(ctx, hb, time.monotonic())["live"])
    fams.append(MetricFamily("tradeguard_ready", "gauge", "1 when /readyz would answer 200.")
                .add(int(ready["ready"])))
    fams.append(MetricFamily("tradeguard_assigned_partitions", "gauge",
                             "Input partitions assigned to this worker.").add(ready["partitions"]))
    fams.append(MetricFamily("tradeguard_event_loop_lag_seconds", "gauge",
                             "How late the last 1 s heartbeat fired.").add(round(hb.lag_s, 6)))
    lag = MetricFamily("tradeguard_consumer_lag", "gauge",
                       "Records not yet read per assigned partition (highwater - position).")
    try:
        for (topic, partition), n in sorted(
                (await asyncio.wait_for(consumer_lag(ctx), LAG_TIMEOUT_S)).items()):
            lag.add(n, topic=topic, partition=str(partition))
    except Exception as exc:  # broker slow or rebalancing: omit lag, keep the rest
        log.warning("consumer lag unavailable for this scrape: %r", exc)
    fams.append(lag)
    return fams
