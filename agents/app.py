"""The Faust application: the engine service, the replicated control board, timers and web.

Data flow (one worker; N workers split partitions):

    orders + auth.events + feedback --(key account)--+
    market.trades + tickers.flow ----(key ticker)----+--> record-path agent, one event per
                                                           poll of thousands -> engine (one
                                                           PartitionCore per partition)
        -> decisions, controls.accounts, tickers.flow, controls.tickers, tickers.profile
    controls.* + tickers.profile + reference.tickers + auth.events
        --(every partition, every worker)--> board, ticker profiles, login index

Faust is the application: worker lifecycle and signals, the web server
(health, readiness, metrics), timers, and the record path itself: one Faust
agent (``agents/record_path.py``) whose events are whole polls of thousands of
records, put on an in-memory channel by the librdkafka consumer thread
(``agents/pipe.py``), never one Faust event per record; Faust's supervisor
restarts it if it raises. docs/architecture.md says how and why, with the
measurements.
"""

from __future__ import annotations

import faust
from faust.app.base import BootStrategy

from agents import controls, record_path, web
from agents.context import WorkerContext
from agents.engine import EngineService
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.settings import Settings

__all__ = ["build_app"]


def build_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    """A Faust app wired to the TradeGuard engine, and the context its parts share."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Topics are created by `tradeguard topics create` with their cleanup
        # policies; the worker must not invent them with defaults. Faust's own
        # consumer reads no topic of ours: no leader topic either.
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        logging_config=None,
        # Faust's own data directory (empty for in-memory tables) lives with our state,
        # not in the working directory: the container's root filesystem is read-only.
        datadir=str(settings.state_dir / "faust"),
    )
    # Faust runs no Kafka client of its own: every record moves through the engine's
    # confluent-kafka clients, configured in one place (Settings.kafka_client_config).
    app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False,
                                     enable_kafka_producer=False)
    ctx = WorkerContext(settings=settings, app=app, policy=PolicyFile(settings.policy_file or None))
    controls.register(ctx)
    engine = EngineService(settings, ctx.shared, ctx.policy, ctx.metrics, ctx.board_ready,
                           loop=None, beacon=app.beacon)
    ctx.engine = engine
    app.add_dependency(engine)
    record_path.register(app, engine)
    web.register(ctx)
    return app, ctx
