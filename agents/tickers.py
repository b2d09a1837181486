"""The ticker agent: market trades and risk-scored order flow of the tickers this worker owns.

``market.trades`` and ``tickers.flow`` are keyed by ticker, so each ticker's
liquidity and the accounts buying it live on one worker. Publishes ticker
profiles (for every worker's thin-ticker feature) and ``halt_buys`` controls.
"""

from __future__ import annotations

from agents.context import WorkerContext, now_ms

__all__ = ["register"]


def register(ctx: WorkerContext) -> None:
    settings = ctx.settings

    @ctx.app.agent(ctx.channel("market.trades", "tickers.flow"), name="tickers")
    async def tickers(stream):
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            records = await ctx.decode(events)
            cfg = ctx.policy.current()
            trades = [r.record for r in records if r.topic == "market.trades"]
            flows = [r.record for r in records if r.topic == "tickers.flow"]
            ctx.counters["trades"] += len(trades)
            # Trades first: a flow's volume-vs-ADV must see the prints of the same batch.
            profiles = ctx.tickers.learn_trades(trades, cfg, now_ms())
            halts = ctx.tickers.watch_flow(flows, ctx.board, cfg, now_ms())
            await ctx.send_all("tickers.profile", "ticker", profiles)
            await ctx.send_all("controls.tickers", "ticker", halts)
            ctx.counters["halts"] += len(halts)
