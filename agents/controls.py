"""Controls, ticker profiles and logins, replicated to every worker.

``controls.tickers``, ``controls.accounts`` and ``tickers.profile`` are
compacted and small; each worker reads all their partitions from the start
(no consumer group), so a halt decided anywhere is enforced everywhere and a
restarted worker rebuilds the board before it reports ready. ``auth.events``
is read the same way from one infrastructure window back, for the shared
attacker-infrastructure signal, which no single account partition can see.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from agents.context import WorkerContext, now_ms
from streams.schema import RecordError

__all__ = ["register"]

log = logging.getLogger("tradeguard.controls")
REPLICATED = ("controls.tickers", "controls.accounts", "tickers.profile", "auth.events")
INFRA_LOOKBACK_MS = 3_600_000  # the infrastructure window (InfraParams.window_s)


def register(ctx: WorkerContext) -> None:
    app = ctx.app

    @app.task
    async def replicate_controls() -> None:
        names = {ctx.settings.topic(n): n for n in REPLICATED}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=ctx.settings.bootstrap_servers, enable_auto_commit=False,
            group_id=None, fetch_max_wait_ms=ctx.settings.fetch_max_wait_ms,
            **ctx.aiokafka_security())
        await consumer.start()
        try:
            parts = [TopicPartition(t, p) for t in names
                     for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            logins = [tp for tp in parts if names[tp.topic] == "auth.events"]
            if logins:  # logins only as far back as the infrastructure window reaches
                since = int(time.time() * 1000) - INFRA_LOOKBACK_MS
                found = await consumer.offsets_for_times({tp: since for tp in logins})
                for tp in logins:
                    if found.get(tp) is not None:
                        consumer.seek(tp, found[tp].offset)
                    else:
                        await consumer.seek_to_end(tp)
            end = await consumer.end_offsets(parts)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batches.items():
                    for msg in messages:
                        _apply(ctx, names[tp.topic], msg)
                # Caught up: past the end offsets *and* a fetch came back empty, because
                # some brokers (the embedded Tansu) report end offsets short of the end.
                if (not ctx.board_ready.is_set() and not batches
                        and all([await consumer.position(tp) >= end[tp] for tp in parts])):
                    ctx.board_ready.set()
                    log.info("control board restored: %d halts, %d account controls",
                             len(ctx.board.active_halts(now_ms())),
                             len(ctx.board.account_controls()))
        finally:
            await consumer.stop()

    @app.timer(interval=1.0)
    async def release_expired_halts() -> None:
        """Publish a release for every expired halt on a ticker this worker owns.

        The owner is the worker assigned the ticker's ``tickers.flow`` partition,
        so exactly one worker releases each ticker, the same one that halts it.
        """
        flow = ctx.settings.topic("tickers.flow")
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == flow}
        for halt in ctx.board.expired_halts(now_ms()):
            if _partition_of(halt["ticker"], ctx.settings.partitions) not in owned:
                continue
            release = {"ticker": halt["ticker"], "action": "release",
                       "reason": "halt expired", "evidence": {"halt_ts": halt["ts"]},
                       "expires_at": None, "source": "engine", "ts": now_ms()}
            ctx.board.apply_ticker(release)
            await ctx.send("controls.tickers", halt["ticker"], release)
            ctx.counters["halt_releases"] += 1


def _partition_of(key: str, partitions: int) -> int:
    """The partition the Java/aiokafka default partitioner (murmur2) puts ``key`` in."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    found = consumer.partitions_for_topic(topic)
    if not found:
        raise RuntimeError(f"topic {topic} does not exist: run `tradeguard topics create`")
    return found


def _apply(ctx: WorkerContext, name: str, msg) -> None:
    try:
        record = ctx.schema(name).decode(msg.value)
    except RecordError as exc:
        if name == "auth.events":
            return  # the accounts agent dead-letters it, once, with the reason
        # Compacted topics are written by us and the CLI; a bad one is logged and
        # skipped here (the board must not stop), never silently.
        ctx.counters[f"deadletter:{name}"] += 1
        log.error("ignored bad %s record at %d@%d: %s", name, msg.partition, msg.offset, exc)
        return
    if name == "auth.events":
        ctx.infra.observe([record])
    elif name == "controls.tickers":
        ctx.board.apply_ticker(record)
    elif name == "controls.accounts":
        ctx.board.apply_account(record)
    else:
        ctx.profiles[record["ticker"]] = (record["adv_value"], record["last_price"])
