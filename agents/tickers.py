"""The ticker agent: market trades and risk-scored order flow of the tickers this worker owns.

``market.trades`` and ``tickers.flow`` are keyed by ticker, so each ticker's
liquidity and the accounts buying it live on one worker (one TickerSurveillance
per partition, restored from its snapshot). Publishes ticker profiles (for
every worker's thin-ticker feature) and ``halt_buys`` controls.
"""

from __future__ import annotations

from agents.context import WorkerContext, now_ms
from agents.state import PartitionStates
from tradeguard.surveillance.controls import ControlBoard
from tradeguard.surveillance.tickers import TickerSurveillance

__all__ = ["register"]

INPUTS = ("market.trades", "tickers.flow")


def register(ctx: WorkerContext) -> PartitionStates:
    settings = ctx.settings

    def replay(surveillance: TickerSurveillance, records: list) -> None:
        cfg, scratch = ctx.policy.current(), ControlBoard()
        for topic, record in records:
            if topic == "market.trades":
                surveillance.learn_trades([record], cfg, record["ts"])
            else:
                surveillance.watch_flow([record], scratch, cfg, record["ts"])

    states = PartitionStates(ctx, "tickers", INPUTS, TickerSurveillance,
                             TickerSurveillance.to_bytes, TickerSurveillance.from_bytes, replay)

    @ctx.app.agent(ctx.channel(*INPUTS), name="tickers")
    async def tickers(stream):
        # Decide nothing before the control board holds every halt and freeze in force.
        await ctx.board_ready.wait()
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            ctx.metrics.observe_batch("tickers", len(events))
            cfg = ctx.policy.current()
            for partition, part_events in (await states.split(events)).items():
                records = await ctx.decode(part_events)
                trades = [r.record for r in records if r.topic == "market.trades"]
                flows = [r.record for r in records if r.topic == "tickers.flow"]
                ctx.counters["trades"] += len(trades)
                surveillance = states.state(partition)
                # Trades first: a flow's volume-vs-ADV must see the prints of the same batch.
                profiles = surveillance.learn_trades(trades, cfg, now_ms())
                halts = surveillance.watch_flow(flows, ctx.board, cfg, now_ms())
                await ctx.send_all("tickers.profile", "ticker", profiles)
                await ctx.send_all("controls.tickers", "ticker", halts)
                ctx.counters["halts"] += len(halts)
            await states.snapshot_due()

    return states
