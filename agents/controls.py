"""Controls, ticker profiles, reference data and logins, replicated to every worker.

``controls.tickers``, ``controls.accounts``, ``tickers.profile`` and
``reference.tickers`` are compacted and small; each worker reads all their
partitions from the start (no consumer group), so a halt decided anywhere is
enforced everywhere and a restarted worker rebuilds the board (and the ticker
reference data, which no snapshot holds) before it reports ready. ``auth.events``
is read the same way from one infrastructure window back, for the shared
attacker-infrastructure signal, which no single account partition can see.

A confluent-kafka consumer in a thread reads; what it reads is applied on the
event loop (``call_soon_threadsafe``), so the board only ever changes between
two engine steps, never in the middle of one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition

from agents.context import WorkerContext
from agents.state import reader
from streams.schema import RecordError
from streams.signing import CONTROL_TOPICS, ControlKeys, ReplayError, unsigned_or_forged
from streams.topics import (AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, REFERENCE_TICKERS,
                            TICKERS_PROFILE, topic as topic_spec)
from streams.wire import BatchDecoder, to_dict
from tradeguard.core.board import REPLAYED, UNSEQUENCED

__all__ = ["register"]

log = logging.getLogger("tradeguard.controls")
REPLICATED = (CONTROLS_TICKERS, CONTROLS_ACCOUNTS, TICKERS_PROFILE, AUTH_EVENTS,
              REFERENCE_TICKERS)
# Logins read back at start: the infrastructure window (InfrastructureWatch.window_s, an
# hour) and, before it, the day of logins an IP link needs to tell a device new to an
# account (a suspect login) from the customer's usual one.
INFRA_LOOKBACK_MS = 24 * 3_600_000


class ControlReplica:
    """Reads the replicated topics in a thread; applies them on the loop."""

    def __init__(self, ctx: WorkerContext, loop: asyncio.AbstractEventLoop) -> None:
        self.ctx, self.loop = ctx, loop
        self.names = {ctx.settings.topic(n): n for n in REPLICATED}
        self.decoders = {n: BatchDecoder(topic_spec(n).schema) for n in REPLICATED}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tradeguard-controls", daemon=True)
        self.ignored = 0
        # Only signed control records are enforced (streams/signing.py, docs/security.md).
        self.keys = ControlKeys.from_settings(ctx.settings)
        ctx.metrics.development_key.set(1 if self.keys.is_development else 0)
        if self.keys.is_development:
            log.warning("control records are signed and checked with the public development "
                        "key: anyone who can write controls.* can forge them; set "
                        "TRADEGUARD_CONTROL_KEY_FILE in any deployment")
        self.refused = 0

    def _run(self) -> None:
        consumer = reader(self.ctx.settings)
        try:
            parts = self._start_positions(consumer)
            consumer.assign(parts)
            eof: set[tuple[str, int]] = set()
            wanted = {(tp.topic, tp.partition) for tp in parts}
            ready = False
            while not self.stop.is_set():
                messages = consumer.consume(5000, 0.2)
                by_topic: dict[str, list[Any]] = {}
                for msg in messages:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            eof.add((msg.topic(), msg.partition()))
                        continue
                    eof.discard((msg.topic(), msg.partition()))
                    by_topic.setdefault(self.names[msg.topic()], []).append(msg)
                if by_topic:
                    self.loop.call_soon_threadsafe(self._apply, by_topic)
                # Caught up: every partition at EOF *and* a fetch came back empty, because
                # some brokers (the embedded Tansu) report end offsets short of the end.
                if not ready and not messages and eof >= wanted:
                    ready = True
                    self.loop.call_soon_threadsafe(self._ready)
        except Exception:  # pragma: no cover - reported and re-raised for the supervisor
            log.exception("control board reader failed")
            raise
        finally:
            consumer.close()

    def _start_positions(self, consumer) -> list[TopicPartition]:
        parts = []
        since = int(time.time() * 1000) - INFRA_LOOKBACK_MS
        for full, name in self.names.items():
            meta = consumer.list_topics(full, timeout=10).topics.get(full)
            if meta is None or meta.error is not None or not meta.partitions:
                raise RuntimeError(f"topic {full} does not exist: run `tradeguard topics create`")
            for p in meta.partitions:
                if name == AUTH_EVENTS:  # logins only as far back as the window reaches
                    found = consumer.offsets_for_times([TopicPartition(full, p, since)],
                                                       timeout=10)[0]
                    offset = found.offset if found.offset >= 0 else OFFSET_END
                    parts.append(TopicPartition(full, p, offset))
                else:
                    parts.append(TopicPartition(full, p, OFFSET_BEGINNING))
        return parts

    def _apply(self, by_topic: dict[str, list[Any]]) -> None:
        shared = self.ctx.shared
        for name, messages in by_topic.items():
            # Provenance: what this worker has read of each replicated partition, refused
            # and bad records included (they were read, and left out the same way each time).
            for m in messages:
                shared.seen_from.setdefault((name, m.partition()), m.offset())
                shared.seen[(name, m.partition())] = m.offset() + 1
            if name in CONTROL_TOPICS:
                messages = self._signed(name, messages)
            records, bad = self.decoders[name].decode_many([m.value() for m in messages])
            if bad:  # records and messages stay paired (the board's refusals name offsets)
                drop = {i for i, _ in bad}
                kept = [m for i, m in enumerate(messages) if i not in drop]
            else:
                kept = messages
            if bad and name != AUTH_EVENTS:  # the engine dead-letters bad logins, once
                # Compacted topics are written by us, the CLI and the console; a bad
                # record is logged and counted here (the board must not stop), never
                # silently dropped.
                for i, error in bad:
                    self.ignored += 1
                    self.ctx.metrics.observe_deadletter(name, error)
                    log.error("ignored bad %s record at %d@%d: %s", name,
                              messages[i].partition(), messages[i].offset(), error)
            if name == AUTH_EVENTS:
                shared.infra.observe(records)
            elif name in CONTROL_TOPICS:
                accept = (shared.board.accept_ticker if name == CONTROLS_TICKERS
                          else shared.board.accept_account)
                for r, m in zip(records, kept):
                    verdict = accept(to_dict(r))
                    if verdict in (REPLAYED, UNSEQUENCED):  # a replay changes nothing
                        self._refuse(name, m, ReplayError(verdict))
            elif name == TICKERS_PROFILE:
                shared.apply_profiles(records)
            else:
                shared.apply(name, records)

    def _signed(self, name: str, messages: list[Any]) -> list[Any]:
        """The messages whose signature checks out; the rest are logged, counted, ignored."""
        refused = unsigned_or_forged([m.value() for m in messages], self.keys)
        if not refused:
            return messages
        for i, error in refused:
            self._refuse(name, messages[i], error)
        drop = {i for i, _ in refused}
        return [m for i, m in enumerate(messages) if i not in drop]

    def _refuse(self, name: str, message: Any, error: Exception) -> None:
        self.refused += 1
        self.ctx.metrics.observe_refused_control(name, error)
        log.error("refused %s record at %d@%d (key %r): %s", name, message.partition(),
                  message.offset(), message.key(), error)

    def _ready(self) -> None:
        board = self.ctx.shared.board
        self.ctx.board_ready.set()
        log.info("control board restored: %d halts, %d account controls",
                 len(board.active_halts(int(time.time() * 1000))), len(board.account_controls()))


def register(ctx: WorkerContext) -> None:
    app = ctx.app

    @app.task
    async def replicate_controls() -> None:
        replica = ControlReplica(ctx, asyncio.get_running_loop())
        replica.thread.start()
        try:
            while replica.thread.is_alive():
                await asyncio.sleep(0.5)
            raise RuntimeError("the control board reader stopped")
        finally:
            replica.stop.set()


assert RecordError  # bad records are reported through the decoder's RecordError
