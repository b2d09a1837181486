"""The naive Faust agent: one event at a time, ``await send`` per decision, nothing scored.

    python -m benchmarks.peers.faust_naive BROKER_URL TOPIC_PREFIX APP_ID

What a first Faust app looks like: the idiomatic ``async for`` over the stream
with the JSON codec, a decision-shaped record built and sent for each order.
Same Faust settings as the engine where they matter (fresh group from the
earliest offset, 1 ms linger, fast joins).
"""

from __future__ import annotations

import sys

import faust

from benchmarks.peers.shape import decision_shaped

__all__ = ["build_app"]


def build_app(broker: str, prefix: str, app_id: str) -> faust.App:
    app = faust.App(app_id, broker=broker, store="memory://", web_enabled=False,
                    topic_allow_declare=False, topic_disable_leader=True,
                    consumer_auto_offset_reset="earliest", producer_linger_ms=1,
                    broker_rebalance_timeout=3.0, broker_session_timeout=10.0,
                    broker_heartbeat_interval=1.0, logging_config=None)
    orders = app.topic(f"{prefix}orders", key_serializer="raw", value_serializer="json")
    decisions = app.topic(f"{prefix}decisions", key_serializer="raw", value_serializer="json")

    @app.agent(orders)
    async def decide(stream):
        async for order in stream:
            await decisions.send(key=order["account_id"].encode(), value=decision_shaped(order))

    return app


def main(argv: list[str]) -> None:
    broker, prefix, app_id = argv
    app = build_app(broker, prefix, app_id)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
