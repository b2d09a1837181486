"""The account agent: logins, orders and labels of the accounts this worker owns.

``orders``, ``auth.events`` and ``feedback`` are all keyed by account_id and
co-partitioned, so one stream carries everything about an account in arrival
order. Per batch: decode (bad records to ``deadletter``), learn logins, decide
orders, publish decisions, account controls and the flow re-keyed by ticker.
"""

from __future__ import annotations

from agents.context import WorkerContext, now_ms

__all__ = ["register"]


def register(ctx: WorkerContext) -> None:
    settings = ctx.settings

    @ctx.app.agent(ctx.channel("orders", "auth.events", "feedback"), name="accounts")
    async def accounts(stream):
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            # Kafka orders records within a partition, not across topics: a login
            # and the orders placed right after it can arrive in either order
            # within one fetch. Event time puts the login first again.
            records = sorted(await ctx.decode(events), key=lambda d: d.record["ts"])
            # Logins, orders and labels are handled in runs of one kind, in that order.
            run: list[dict] = []
            run_topic = None
            for item in records + [None]:
                topic = item.topic if item else None
                if topic != run_topic and run:
                    await _handle(ctx, run_topic, run)
                    run = []
                if item:
                    run.append(item.record)
                    run_topic = topic


async def _handle(ctx: WorkerContext, topic: str, records: list[dict]) -> None:
    if topic == "auth.events":
        ctx.accounts.learn_auth(records)
        ctx.counters["auth_events"] += len(records)
    elif topic == "orders":
        outcome = ctx.accounts.decide(records, ctx.board, ctx.policy.current(), now_ms())
        ctx.counters["orders"] += len(records)
        for d in outcome.decisions:
            ctx.counters[f"decision:{d['action']}"] += 1
        await ctx.send_all("decisions", "account_id", outcome.decisions)
        await ctx.send_all("controls.accounts", "account_id", outcome.account_controls)
        await ctx.send_all("tickers.flow", "ticker", outcome.flows)
    elif topic == "feedback":
        ctx.counters["feedback"] += len(records)
        releases = ctx.accounts.learn_feedback(records, ctx.board, now_ms())
        await ctx.send_all("controls.accounts", "account_id", releases)
