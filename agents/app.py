"""The Faust application: topics, agents and worker settings, built from one Settings object.

Data flow (one worker; N workers split partitions):

    orders + auth.events + feedback --(key account)--> accounts agent
        -> decisions, controls.accounts, tickers.flow
    market.trades + tickers.flow --(key ticker)--> tickers agent
        -> tickers.profile, controls.tickers
    controls.* + tickers.profile --(every partition, every worker)--> control board
"""

from __future__ import annotations

import ssl

import faust

from agents import accounts, controls, tickers, web
from agents.context import WorkerContext
from agents.transport import use_fetch_wait
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.settings import Settings

__all__ = ["build_app"]


def build_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    """A Faust app wired to the TradeGuard agents, and the context they share."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=_credentials(settings),
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Topics are created by `tradeguard topics create` with their cleanup
        # policies; the worker must not invent them with defaults.
        topic_allow_declare=False,
        topic_disable_leader=False,
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        # Fast group joins: the default 60 s rebalance timeout makes a fresh
        # worker on the embedded broker wait that long for its first assignment.
        broker_rebalance_timeout=3.0,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=1,
        stream_buffer_maxsize=max(4096, settings.batch_max * 2),
        broker_commit_every=max(1000, settings.batch_max),
        broker_commit_interval=1.0,
        logging_config=None,
        # Faust's own data directory (empty for in-memory tables) lives with our state,
        # not in the working directory: the container's root filesystem is read-only.
        datadir=str(settings.state_dir / "faust"),
    )
    use_fetch_wait(app, settings.fetch_max_wait_ms)
    ctx = WorkerContext(settings=settings, app=app, policy=PolicyFile(settings.policy_file or None))
    account_states = accounts.register(ctx)
    ticker_states = tickers.register(ctx)
    controls.register(ctx)
    web.register(ctx)

    @app.on_partitions_revoked.connect
    async def forget_revoked(app, revoked, **kwargs) -> None:
        """A partition that moves away is restored by its next owner from the snapshot."""
        for states, names in ((account_states, accounts.INPUTS), (ticker_states, tickers.INPUTS)):
            full = {settings.topic(n) for n in names}
            states.forget({tp.partition for tp in revoked if tp.topic in full})

    return app, ctx


def _credentials(settings: Settings):
    if settings.security_protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    if settings.security_protocol.startswith("SASL"):
        mechanism = settings.sasl_mechanism.replace("-", "_")
        return faust.SASLCredentials(username=settings.sasl_username,
                                     password=settings.password(), mechanism=mechanism,
                                     ssl_context=context if settings.security_protocol.endswith("SSL") else None)
    return faust.SSLCredentials(context)
