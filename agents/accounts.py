"""The account agent: logins, orders and labels of the accounts this worker owns.

``orders``, ``auth.events`` and ``feedback`` are all keyed by account_id and
co-partitioned, so one stream carries everything about an account. Each
partition has its own AccountSurveillance (restored from its snapshot when the
worker first sees it). Per batch and partition: decode (bad records to
``deadletter``), learn logins, decide orders, learn labels; publish decisions,
account controls and the order flow re-keyed by ticker.
"""

from __future__ import annotations

from agents.context import WorkerContext, now_ms
from agents.state import PartitionStates
from tradeguard.surveillance.accounts import AccountSurveillance
from tradeguard.surveillance.controls import ControlBoard

__all__ = ["register"]

INPUTS = ("orders", "auth.events", "feedback")


def register(ctx: WorkerContext) -> PartitionStates:
    settings = ctx.settings

    def fresh() -> AccountSurveillance:
        return AccountSurveillance(settings.home_market, profiles=ctx.profiles,
                                   anomaly_window=settings.anomaly_window, infra=ctx.infra)

    def replay(surveillance: AccountSurveillance, records: list) -> None:
        scratch = ControlBoard()  # what replay decides was published before; not again
        for topic, run in _runs(records):
            _apply(surveillance, topic, run, scratch, ctx.policy.current(), run[-1]["ts"])

    states = PartitionStates(ctx, "accounts", INPUTS, fresh, AccountSurveillance.to_bytes,
                             lambda b: AccountSurveillance.from_bytes(b, ctx.profiles, ctx.infra),
                             replay)

    @ctx.app.agent(ctx.channel(*INPUTS), name="accounts")
    async def accounts(stream):
        # Decide nothing before the control board holds every halt and freeze in force.
        await ctx.board_ready.wait()
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            ctx.metrics.observe_batch("accounts", len(events))
            for partition, part_events in (await states.split(events)).items():
                # Kafka orders records within a partition, not across topics: a login
                # and the orders placed right after it can arrive in either order
                # within one fetch. Event time puts the login first again.
                decoded = sorted(await ctx.decode(part_events), key=lambda d: d.record["ts"])
                surveillance = states.state(partition)
                for topic, run in _runs([(d.topic, d.record) for d in decoded]):
                    await _publish(ctx, topic, _apply(surveillance, topic, run, ctx.board,
                                                      ctx.policy.current(), now_ms()), len(run))
            await states.snapshot_due()

    return states


def _runs(records: list[tuple[str, dict]]):
    """Consecutive records of one topic, in order: (topic, [record, ...])."""
    run: list[dict] = []
    topic = None
    for name, record in records:
        if name != topic and run:
            yield topic, run
            run = []
        topic = name
        run.append(record)
    if run:
        yield topic, run


def _apply(surveillance: AccountSurveillance, topic: str, run: list[dict], board, cfg, now: int):
    if topic == "auth.events":
        surveillance.learn_auth(run)
        return None
    if topic == "orders":
        return surveillance.decide(run, board, cfg, now)
    return surveillance.learn_feedback(run, board, now)


async def _publish(ctx: WorkerContext, topic: str, outcome, count: int) -> None:
    if topic == "auth.events":
        ctx.counters["auth_events"] += count
    elif topic == "orders":
        ctx.counters["orders"] += count
        for d in outcome.decisions:
            ctx.counters[f"decision:{d['action']}"] += 1
        ctx.metrics.observe_decisions(outcome.decisions, now_ms())
        await ctx.send_all("decisions", "account_id", outcome.decisions)
        await ctx.send_all("controls.accounts", "account_id", outcome.account_controls)
        await ctx.send_all("tickers.flow", "ticker", outcome.flows)
    else:
        ctx.counters["feedback"] += count
        await ctx.send_all("controls.accounts", "account_id", outcome)
