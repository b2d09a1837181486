"""The engine: polls of input records in, the decision core per partition, outputs out.

A Faust service (started and stopped with the app, on SIGTERM too) that owns
the Kafka edge and the partitions' cores; the record-path Faust agent
(``agents/record_path.py``) hands it what ``KafkaPipe`` put on the agent's
channel, one item at a time (``handle``): one poll of thousands of records is
one step, rebalance markers come between polls in order. Per step: decode each
(topic, partition) group with the typed decoder (bad records to ``deadletter``
with the reason), drop what a restored snapshot already covers, bound event time
against the clock, run each partition's ``PartitionCore``, encode the output
blocks and produce them, and queue the poll's offsets for commit once they are
delivered. The wall clock is read here for the decision's ``ts`` (latency) and
for metrics; never inside the core.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from typing import Any, Callable

import mode
from confluent_kafka import TopicPartition
import orjson

from agents.pipe import Assigned, Delivery, Fenced, KafkaPipe, Poll, Revoked
from agents.state import PartitionState, SnapshotStore, restore_partitions
from streams.bounds import Limits, implausible, out_of_time
from streams.codec import deadletter_record, encode_value
from streams.partitioning import FIX, home_partition, misplaced
from streams.signing import CONTROL_TOPICS, ControlKeys, attest, attest_answers, sign
from streams.topics import (AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DEADLETTER,
                            DECISIONS, DECISIONS_SHADOW, ENGINE_STEPS, FEEDBACK, MARKET_TRADES,
                            STATE_SNAPSHOTS, TICKERS_FLOW, TICKERS_PROFILE, topic as topic_spec)
from streams.wire import BatchDecoder, encode_decisions, encode_flows
from tradeguard.core import ACCOUNT_TOPICS, INPUT_TOPICS, TICKER_TOPICS, Inputs, PartitionCore, Shared
from tradeguard.core.profiles import PROFILE_LAG_MS
from tradeguard.core.warmup import warm_up
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.metrics import EngineMetrics
from tradeguard.runtime.settings import Settings

__all__ = ["REROUTED_HEADER", "EngineService", "now_ms"]

#: Header on a record the engine moved to its key's murmur2 partition: where it sat first.
REROUTED_HEADER = "tradeguard-rerouted-from"

log = logging.getLogger("tradeguard.engine")


def now_ms() -> int:
    return int(time.time() * 1000)


class EngineService(mode.Service):
    """The hot path of one worker."""

    def __init__(self, settings: Settings, shared: Shared, policy: PolicyFile,
                 metrics: EngineMetrics, board_ready: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.shared = shared
        self.policy = policy
        self.shadow_policy = (PolicyFile(settings.shadow_policy_file)
                              if settings.shadow_policy_file else None)
        self.metrics = metrics
        self.board_ready = board_ready
        self.names = {settings.topic(n): n for n in INPUT_TOPICS}
        self.decoders = {n: BatchDecoder(topic_spec(n).schema) for n in INPUT_TOPICS}
        self.limits = Limits.from_settings(settings)
        self.out_topics = {n: settings.topic(n) for n in (
            DECISIONS, TICKERS_FLOW, CONTROLS_ACCOUNTS, CONTROLS_TICKERS,
            TICKERS_PROFILE, DEADLETTER, STATE_SNAPSHOTS, DECISIONS_SHADOW,
            ENGINE_STEPS)}
        self.partitions: dict[int, PartitionState] = {}
        self.pipe: KafkaPipe | None = None
        self.snapshots = SnapshotStore(settings)
        self.control_keys = ControlKeys.from_settings(settings)  # signs controls.*
        self._snapshot_cursor = 0
        self._rerouted_warned: dict[str, float] = {}
        self._epoch = 0  # polls of older subscriptions are skipped (see _commit)
        self._rejoining = False
        self.last_snapshot_at: float | None = None
        self.started_consuming = False
        # Provenance (docs/replay.md): this incarnation's id, its step count, and the
        # replicated offsets already stamped (each step carries only what changed).
        self.incarnation = uuid.uuid4().hex[:12]
        self._steps = 0
        self._step_ref: str | None = None
        self._seen_stamped: dict[tuple[str, int], int] = {}
        self._restored: dict[str, dict] = {}
        # Partitions revoked or lost (at least once), kept until the next assignment: one
        # given back untouched is taken up where it stood, without a restore (``_assigned``).
        self._parked: dict[int, PartitionState] = {}
        # The record-path agent's channel (``attach``), and whether polls may flow to it.
        self.inbox: Any = None
        self._attached = asyncio.Event()
        self.consuming = asyncio.Event()
        self._handling: Any = None  # the item the agent is on (``step_failed`` needs it)
        self._warm_up: asyncio.Future | None = None  # the kernels' warm-up, from on_start

    def _fresh(self) -> PartitionCore:
        return PartitionCore(self.shared, self.settings.home_market, self.settings.anomaly_window,
                             idle_horizon_s=self.settings.idle_horizon_s)

    async def on_start(self) -> None:
        # Load the compiled kernels on a throwaway engine at once, while the control board
        # is restored and the consumer joins the group: the first real poll finds them
        # ready, and start-up pays for the longest of the three, not their sum.
        self._warm_up = _off_the_loop(self._timed_warm_up, "tradeguard-warm-up")
        self.add_future(self._start_when_board_ready())

    def _timed_warm_up(self) -> tuple[int, float]:
        started = time.perf_counter()
        decided = warm_up(self.policy.current(), self.settings.home_market,
                          self.settings.anomaly_window)
        return decided, time.perf_counter() - started

    async def _start_when_board_ready(self) -> None:
        # Decide nothing before the control board holds every halt and freeze in force.
        await self.board_ready.wait()
        await self._attached.wait()  # a poll handed over before the agent listens is lost
        # Long-lived state (models, feature arrays, Faust's own objects) never needs the
        # cyclic collector again: freezing it keeps full collections off the hot path. A
        # step allocates thousands of short-lived containers: collecting the young
        # generation every 700 allocations would walk them dozens of times per step.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        self.pipe = KafkaPipe(self.settings, list(self.names), self.inbox.put,
                              asyncio.get_running_loop())
        self.pipe.start()
        waited = time.perf_counter()
        if self._warm_up is None:  # not begun at on_start (started without it)
            self._warm_up = _off_the_loop(self._timed_warm_up, "tradeguard-warm-up")
        decided, took = await self._warm_up  # begun at on_start (usually done by now)
        log.info("kernels loaded in %.2fs (%d made-up orders decided and discarded); "
                 "waited %.2fs for them after the board was ready", took, decided,
                 time.perf_counter() - waited)
        self.started_consuming = True
        self.consuming.set()
        self.add_future(self._commit_loop())

    def attach(self, inbox: Any) -> None:
        """The Faust channel the record-path agent reads: polls and markers go there."""
        self.inbox = inbox
        self._attached.set()

    async def on_stop(self) -> None:
        pipe = self.pipe
        if pipe is None:
            return
        # Graceful stop: no new polls; what was decided is delivered and committed.
        pipe._stop.set()
        await asyncio.get_running_loop().run_in_executor(None, pipe._thread.join, 10)
        # The agent stops first (Faust stops its agents before this service): what it had
        # not taken yet is decided here. Its stream, stopping, threw StopAsyncIteration into
        # the queue ahead of the items: skipped.
        inbox = self.inbox.queue
        while True:
            try:
                item = inbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            except StopAsyncIteration:
                continue
            if isinstance(item, Poll):
                self._step(item)
        if pipe.transactional:
            self._commit()
        else:
            await pipe.drain()
        pipe._commit_ready(asynchronous=False)
        pipe.stop()
        log.info("engine stopped: outputs delivered, offsets committed")

    # -- the loop -------------------------------------------------------------------------

    async def handle(self, item: Poll | Assigned | Revoked) -> None:
        """One event of the record-path agent: a poll is one step; markers in between."""
        pipe = self.pipe
        assert pipe is not None
        self._handling = item
        if isinstance(item, Poll):
            if item.epoch < self._epoch:
                return  # read before a refused commit: read again after the rejoin
            try:
                self._step(item)
                await self._snapshot_due()
            except Fenced as exc:  # the producer failed mid-step: as a refused commit
                self._refused(exc)
                return
            if pipe.transactional:
                self._commit()
        elif isinstance(item, Assigned):
            if item.epoch < self._epoch:
                return
            self._rejoining = False
            await self._assigned(item)
        elif isinstance(item, Revoked):
            await self._revoked(item)

    def step_failed(self, exc: BaseException) -> None:
        """The agent is raising: nothing of the item it was on counts; read it again.

        A step that raised may have fed its records to the cores half-way, and produced
        some of its outputs: it can neither be stepped again on the same state nor skipped
        (a later poll's offsets would commit past it). So, as after a refused commit: the
        open transaction (exactly once) is aborted, the cores are dropped, and the worker
        joins the group again and restores from the snapshots and the committed offsets,
        which never cover the failed poll. Faust's supervisor then restarts the agent; the
        poll is decided again, as after a crash (at least once: some of its decisions may
        go out twice, the second with what the worker knows by then).
        """
        log.error("the record-path agent raised on %s; its step is dropped and read again "
                  "after a rejoin", type(self._handling).__name__, exc_info=exc)
        pipe = self.pipe
        if pipe is None:
            return
        if isinstance(self._handling, Revoked):
            self._handling.done.set()  # commits nothing (no offsets): the thread moves on
        if pipe.transactional and pipe._in_txn:
            pipe._abandon(f"the step raised: {exc!r}")
        self._start_over()

    def _commit(self, offsets: list | None = None) -> bool:
        """Commit the step's transaction; False when it was refused and the worker rejoins.

        A refused commit means the group moved on without this worker: it was paused past
        its session (a zombie), or the broker was. The transaction is aborted, so nothing
        it decided since its last commit is ever read; its state has learnt from those
        records, so it is dropped, and the worker joins the group again and restores what
        it is given from the snapshots, as after a restart (polls read before are skipped).
        """
        try:
            self.pipe.commit_transaction(offsets)
            return True
        except Fenced as exc:
            self._refused(exc)
            return False

    def _refused(self, exc: Fenced) -> None:
        """Drop what was learnt since the last commit; rejoin and restore (see ``_commit``)."""
        log.error("%s: this worker lost its partitions (paused past its session, or the "
                  "broker was); its state since the last commit is dropped, it rejoins the "
                  "group and restores what it is given from the snapshots", exc)
        self.metrics.fenced.inc()
        self._start_over()

    def _start_over(self) -> None:
        """Drop every core; polls read so far are skipped, the group is joined again."""
        self.partitions.clear()
        self._parked.clear()  # they learnt from what is now read again
        # Positions run ahead of what was decided; a revoke must not commit from them.
        self.pipe.positions.clear()
        self._epoch = self.pipe.epoch + 1
        self._rejoining = True
        self.pipe.rejoin()

    async def _commit_loop(self) -> None:
        pipe = self.pipe
        assert pipe is not None
        if pipe.transactional:
            return  # each step commits its own transaction
        while not self.should_stop:
            await asyncio.sleep(self.settings.commit_interval_s)
            pipe.commit_delivered()

    def _step(self, poll: Poll) -> None:
        """One poll: admit its batches, release what is aligned, decide it, publish, commit."""
        pipe = self.pipe
        assert pipe is not None
        started = time.perf_counter()
        cfg = self.policy.current()
        delivery = Delivery({})
        wall = now_ms()
        touched: set[int] = set()  # partitions given records this step
        for (full, p), messages in poll.records.items():
            if self._admit(full, p, messages, delivery, wall):
                touched.add(p)
        ready = self._align(poll.lagging, touched)
        # Every login released is indexed for the shared-infrastructure signal before any
        # order is decided, whichever partition each is on (the index answers by event
        # time), so the answer does not depend on the order partitions are walked.
        for inputs in ready.values():
            self.shared.infra.observe(inputs.auth)
        outs = self._ticker_sides(ready, cfg)
        # Decide now, record what was known: the step's provenance is taken before its
        # decisions, which name it (``step``), and goes out with them, in the same delivery
        # (committed together), once it can name the controls the step issued too.
        step = self._provenance(ready, outs, wall) if ready else None
        self._step_ref = None if step is None else f"{self.incarnation}/{step['step']}"
        decided, deciding = self._account_sides(ready, outs, cfg, delivery)
        if step is not None:
            self._stamp(step, outs, delivery)
        if self.shadow_policy is not None and deciding:
            # After every live decision of the step is handed to the producer: the shadow
            # costs CPU, never the live decisions' latency. Only partitions that decided
            # orders in this step: another's last batch was shadowed when it was decided.
            self._shadow(deciding, delivery)
        self._offsets_to_commit(delivery)
        pipe.track(delivery)
        self.metrics.observe_step(poll.count, decided, time.perf_counter() - started)

    # -- the step's stages ----------------------------------------------------------------

    def _admit(self, full: str, p: int, messages: list, delivery: Delivery, wall: int) -> bool:
        """Stash one (topic, partition) batch of a poll for its core; False if all was seen.

        In order: what a restored snapshot already covers is skipped; a record off its
        key's partition is re-sent there (the partitioning contract); the rest is decoded
        and held to plausible and event-time bounds, each record that fails one going to
        ``deadletter`` with the reason; labels and step-up answers are attested.
        """
        end = messages[-1].offset() + 1
        self.pipe.positions[(full, p)] = end
        state = self.partitions.get(p)
        if state is None:
            state = self.partitions[p] = PartitionState(self._fresh())
        skip = state.skip_below.get(full, 0)
        if messages[0].offset() < skip:
            messages = [m for m in messages if m.offset() >= skip]
            if not messages:
                _move_on(state, full, skip)
                return False
        name = self.names[full]
        # Partitioning contract (streams/partitioning.py): off its key's partition,
        # re-sent to the partition its key hashes to and decided there; no key, dead.
        wrong = misplaced([m.key() for m in messages], p, self.settings.partitions)
        if wrong:
            self._reroute(name, messages, wrong, delivery, wall)
            messages = _without(messages, wrong)
        records, bad = self.decoders[name].decode_many([m.value() for m in messages])
        messages = self._set_aside(name, bad, messages, delivery, wall)
        # Plausible bounds (streams/bounds.py): a quantity, price or notional beyond what
        # the market allows is a dead letter naming the field, not a risk to score.
        beyond = implausible(name, records, self.limits)
        records = _without(records, beyond)
        messages = self._set_aside(name, beyond, messages, delivery, wall)
        # Event-time bounds: too old, or too far ahead of this worker's clock.
        late = out_of_time(records, wall, self.settings.max_event_age_s,
                           self.settings.max_event_lead_s)
        records = _without(records, late)
        messages = self._set_aside(name, late, messages, delivery, wall)
        if name == FEEDBACK:  # only a signed label may change an account (issue 21)
            records = attest(records, [m.value() for m in messages], self.control_keys)
        elif name == AUTH_EVENTS:  # nor an unsigned answer to a step-up
            records = attest_answers(records, [m.value() for m in messages],
                                     self.control_keys)
        state.stash(name, records, [m.offset() for m in messages],
                    messages[-1].offset() + 1 if messages else None)
        if not messages:  # all dead: nothing to hold back, the offsets can move on
            _move_on(state, full, end)
        self.metrics.observe_records(name, len(records))
        return True

    def _set_aside(self, name: str, rejected: list[tuple[int, Exception]], messages: list,
                   delivery: Delivery, wall: int) -> list:
        """Dead-letter each rejected (row, error), in that order; the messages kept."""
        for i, error in rejected:
            self._deadletter(name, messages[i], error, delivery, wall)
        return _without(messages, rejected)

    def _align(self, lagging_topics: set[tuple[str, int]], touched: set[int]
               ) -> dict[int, Inputs]:
        """Each partition's inputs that are ready to decide, in event time.

        Records wait while a sibling topic of their partition has records on the broker
        this worker has not received yet, so logins, orders, trades and flow are merged
        in event time even when catching up on a backlog. Ticker sides first: their
        trades close the ticker-profile periods orders are valued with. Then, across this
        worker's partitions, an order waits for the logins of every local partition up
        to its time (the shared-infrastructure signal) and for the trades that close the
        profile period it reads (one period before it): received or not, trades not
        decided yet hold back the orders after them.
        """
        lagging = {(self.names[t], p) for t, p in lagging_topics if t in self.names}
        now = time.monotonic()
        wait_s = self.settings.align_wait_ms / 1000
        ready: dict[int, Inputs] = {}
        for p, state in self.partitions.items():
            if state.stashed or p in touched:
                inputs = state.release(lagging, p, now, sides=(TICKER_TOPICS,), wait_s=wait_s)
                if inputs is not None:
                    ready[p] = inputs
        account_limit = self._account_limit(lagging)
        for p, state in self.partitions.items():
            if state.stashed or p in touched:
                inputs = state.release(lagging, p, now, account_limit, sides=(ACCOUNT_TOPICS,),
                                       wait_s=wait_s)
                if inputs is not None:
                    if p in ready:
                        ready[p].orders, ready[p].auth = inputs.orders, inputs.auth
                        ready[p].feedback = inputs.feedback
                    else:
                        ready[p] = inputs
        return ready

    def _account_limit(self, lagging: set[tuple[str, int]]) -> int | None:
        """The event time no order may pass yet: logins still lagging, trades not decided."""
        limits = [self.partitions[p].last_ts(AUTH_EVENTS)
                  for name, p in lagging if name == AUTH_EVENTS and p in self.partitions]
        limits += [state.processed_ts(MARKET_TRADES) + PROFILE_LAG_MS
                   for p, state in self.partitions.items()
                   if state.holds(MARKET_TRADES) or (MARKET_TRADES, p) in lagging]
        return min(limits) if limits else None

    def _ticker_sides(self, ready: dict[int, Inputs], cfg: Any) -> dict:
        """Each ready partition's ticker side, its profiles applied at once.

        A profile one of them publishes is applied here (it reaches other workers through
        tickers.profile), so the orders after it see it as they would had it come back
        from Kafka, without waiting for the round trip.
        """
        outs = {}
        for p, inputs in ready.items():
            outs[p] = self.partitions[p].core.process_tickers(inputs, cfg)
            self.shared.apply_profiles(outs[p].profiles)
        return outs

    def _account_sides(self, ready: dict[int, Inputs], outs: dict, cfg: Any,
                       delivery: Delivery) -> tuple[int, list[int]]:
        """Decide each ready partition's orders and publish; (decided, partitions deciding)."""
        decided = 0
        deciding = []
        for p, inputs in ready.items():
            out = self.partitions[p].core.process_accounts(inputs, cfg, outs[p])
            decided += len(out.decisions)
            if len(out.decisions):
                deciding.append(p)
            self._publish(out, delivery)
        return decided, deciding

    def _offsets_to_commit(self, delivery: Delivery) -> None:
        """What each partition's core has decided: committed once the delivery is acked."""
        for p, state in self.partitions.items():
            for name, offset in state.commit_offsets().items():
                full = self.settings.topic(name)
                delivery.offsets[(full, p)] = offset
                state.next_offsets[full] = offset

    def _provenance(self, ready: dict[int, Inputs], outs: dict, wall: int) -> dict[str, Any]:
        """This step's ``engine.steps`` record, as known before its account sides run.

        What the core was fed (per partition and topic, the [first, end) offsets released)
        and what the worker had applied of every replicated partition (only what changed
        since its previous step), and the profiles its ticker sides applied at once
        (a restore runs one partition and cannot compute the others'): with the input
        topics, enough to feed a core exactly what this step fed it
        (tradeguard/replay/provenance.py).
        """
        self._steps += 1
        released = {str(p): self.partitions[p].take_released() for p in ready}
        seen: dict[str, dict[str, int]] = {}
        stamped = self._seen_stamped
        first: dict[str, dict[str, int]] = {}
        for (name, q), offset in self.shared.seen.items():
            if stamped.get((name, q)) != offset:
                if (name, q) not in stamped:  # where the replicated reader began reading it
                    first.setdefault(name, {})[str(q)] = self.shared.seen_from[(name, q)]
                stamped[(name, q)] = offset
                seen.setdefault(name, {})[str(q)] = offset
        record = {"worker": self.incarnation, "step": self._steps, "released": released,
                  "seen": seen, "ts": wall,
                  "profiles": [[d["ticker"], d["ts"], d["adv_value"], d["last_price"]]
                               for out in outs.values() for d in out.profiles]}
        if first:  # logins are read from a day back, not from the partition's start
            record["seen_from"] = first
        if self._restored:
            record["restored"], self._restored = self._restored, {}
        return record

    def _stamp(self, record: dict[str, Any], outs: dict, delivery: Delivery) -> None:
        """Produce the step's record, with the controls each partition's core issued.

        The board applied those at once, long before its replicated reader reads them
        back (``seen``): a restore that runs one partition from a snapshot replays the
        others' steps, and its own before the snapshot, only as far as their controls go,
        and needs them from here to see the board this step saw.
        """
        # Signed as published (HMAC is deterministic: the same signature): engine.steps is
        # not a control topic, and a restore applies only what carries the control key's
        # signature, so a forged step record cannot put a freeze or a halt on its board.
        keys = self.control_keys
        issued = {}
        for p, out in outs.items():
            part = {}
            if out.ticker_controls:
                part["tickers"] = [sign(r, keys) for r in out.ticker_controls]
            if out.account_controls:
                part["accounts"] = [sign(r, keys) for r in out.account_controls]
            if part:
                issued[str(p)] = part
        if issued:
            record["controls"] = issued
        self.pipe.produce(self.out_topics[ENGINE_STEPS], self.incarnation.encode(),
                          orjson.dumps(record), delivery)

    def _shadow(self, partitions: list[int], delivery: Delivery) -> None:
        cfg = self.shadow_policy.current()
        produce, topic = self.pipe.produce, self.out_topics[DECISIONS_SHADOW]
        wall = now_ms()
        for p in partitions:
            block = self.partitions[p].core.shadow(cfg)
            for key, value in zip(block.account_id, encode_decisions(block, wall)):
                produce(topic, key.encode(), value, delivery)

    def _publish(self, out, delivery: Delivery) -> None:
        pipe, produce, topics = self.pipe, self.pipe.produce, self.out_topics
        if len(out.decisions):
            wall = now_ms()
            pipe.produce_many(topics[DECISIONS], out.decisions.account_id,
                              encode_decisions(out.decisions, wall, self._step_ref), delivery)
            pipe.produce_many(topics[TICKERS_FLOW], out.flows.ticker,
                              encode_flows(out.flows), delivery)
            self.metrics.observe_decisions(out.decisions, wall)
        for name, key, records in ((CONTROLS_ACCOUNTS, "account_id", out.account_controls),
                                   (CONTROLS_TICKERS, "ticker", out.ticker_controls),
                                   (TICKERS_PROFILE, "ticker", out.profiles)):
            if name in CONTROL_TOPICS:  # unsigned, no worker or gateway would enforce them
                records = [sign(r, self.control_keys) for r in records]
            for record in records:
                produce(topics[name], record[key].encode(), encode_value(record), delivery)
            if records and name != TICKERS_PROFILE:
                self.metrics.observe_controls(name, records)

    def _reroute(self, name: str, messages: list, wrong: list, delivery: Delivery,
                 wall: int) -> None:
        """Strays (a producer that does not hash keys with murmur2) go where they belong.

        As Kafka Streams repartitions: the record, byte for byte, to its key's murmur2
        partition of the same topic, where its owner decides it in line with the account's
        logins. A record with no key, or one this engine already moved (the topic has
        another partition count than the settings), cannot be placed: dead-lettered.
        """
        moved = 0
        for i, error in wrong:
            message = messages[i]
            key, headers = message.key(), message.headers() or []
            if key is None or any(h == REROUTED_HEADER for h, _ in headers):
                self._deadletter(name, message, error, delivery, wall)
                continue
            origin = f"{message.partition()}@{message.offset()}".encode()
            self.pipe.produce(message.topic(), key, message.value(), delivery,
                              partition=home_partition(key, self.settings.partitions),
                              headers=[*headers, (REROUTED_HEADER, origin)])
            moved += 1
        if moved:
            self.metrics.observe_rerouted(name, moved)
            now = time.monotonic()
            if now - self._rerouted_warned.get(name, -1e9) > 60.0:  # once a minute per topic
                self._rerouted_warned[name] = now
                log.warning("%d %s records sat off their murmur2 partition and were re-sent to "
                            "it (tradeguard_rerouted_total counts them): their producer should %s",
                            moved, name, FIX)

    def _deadletter(self, name: str, message: Any, error: Exception, delivery: Delivery,
                    wall: int) -> None:
        self.metrics.observe_deadletter(name, error)
        log.warning("dead-lettered %s[%d]@%d: %s", message.topic(), message.partition(),
                    message.offset(), error)
        record = deadletter_record(source_topic=message.topic(), partition=message.partition(),
                                   offset=message.offset(), key=message.key(),
                                   value=message.value(), error=error, now_ms=wall)
        self.pipe.produce(self.out_topics[DEADLETTER], name.encode(), orjson.dumps(record),
                          delivery)

    # -- partitions come and go ---------------------------------------------------------------

    async def _assigned(self, item: Assigned) -> None:
        new = {p for _, p in item.partitions} - set(self.partitions)
        parked, self._parked = self._parked, {}  # what is not given back now goes stale
        for p in sorted(new & set(parked)):
            mine = {t: o for (t, q), o in item.committed.items() if q == p and t in self.names}
            acked = {t: o for (t, q), o in self.pipe.acked.items() if q == p}
            why_not = parked[p].not_resumable(mine, acked)
            if why_not is not None:  # moved on by someone, or ours but unacknowledged
                log.info("partition %d given back but restored, not resumed: %s", p, why_not)
            else:
                # A broker pause that outlived the session, or a rebalance that gave it
                # back: nobody moved it on, so the core goes on as if it never left (the
                # step records go on in this incarnation; replay needs nothing else).
                self.partitions[p] = parked[p]
                new.discard(p)
                self.metrics.resumed.inc()
                log.info("resumed partition %d with the state it held (decided up to %s)",
                         p, {self.names[t]: o for t, o in parked[p].next_offsets.items()})
        if not new:
            return
        restored = await _off_the_loop(
            lambda: restore_partitions(self.settings, self.shared, new, item.committed,
                                       self.policy.current, self._fresh),
            "tradeguard-restore")
        self.partitions.update(restored)
        self.metrics.restored.inc(len(restored))
        for p, state in restored.items():  # provenance: the next step record names them
            self._restored[str(p)] = {
                "generation": state.generation,
                "from": {self.names[t]: o for t, o in state.skip_below.items()},
                "to": {self.names[t]: o for (t, q), o in item.committed.items()
                       if q == p and o is not None and t in self.names}}

    async def _revoked(self, item: Revoked) -> None:
        pipe = self.pipe
        assert pipe is not None
        if not pipe.transactional:
            await pipe.drain()
        # What was decided, not what was received: records still held back for event-time
        # alignment are not committed, so the next owner decides them.
        offsets = []
        for full, p in item.partitions:
            state = self.partitions.get(p)
            decided = (state.commit_offsets().get(self.names.get(full, ""))
                       if state is not None else None)
            if decided is None:
                decided = pipe.positions.get((full, p))
            if decided is not None:
                offsets.append(TopicPartition(full, p, decided))
        if self._rejoining:  # what was received since the last commit is read again
            offsets = []
        elif pipe.transactional:  # with the outputs, in the transaction, never by the consumer
            self._commit(offsets)
            offsets = []
        item.offsets = offsets
        gone = {p for _, p in item.partitions}
        for p in gone:
            # The next owner restores it from the snapshot. Kept here (at least once) in
            # case it comes straight back untouched; otherwise dropped at the assignment.
            state = self.partitions.pop(p, None)
            if state is not None and not pipe.transactional and not self._rejoining:
                self._parked[p] = state.parked()
        item.done.set()

    # -- snapshots ------------------------------------------------------------------------

    async def _snapshot_due(self, force: bool = False) -> None:
        """Snapshot at most one partition per step, so no step pays for all of them."""
        if not self.partitions:
            return
        interval = self.settings.snapshot_interval_s
        per_partition = interval / max(len(self.partitions), 1)
        now = time.monotonic()
        if not force and self.last_snapshot_at is not None and \
                time.monotonic() - self._last_snapshot_mono < per_partition:
            return
        ps = sorted(self.partitions)
        for _ in range(len(ps)):
            p = ps[self._snapshot_cursor % len(ps)]
            self._snapshot_cursor += 1
            state = self.partitions[p]
            if force or now - state.snapshot_at >= interval:
                self._snapshot(p, state)
                return

    _last_snapshot_mono = 0.0

    def _snapshot(self, p: int, state: PartitionState) -> None:
        """Serialise now; produce once every output of the state it reflects is delivered."""
        pipe = self.pipe
        assert pipe is not None
        started = time.perf_counter()
        records = self.snapshots.records(p, state)
        topic = self.out_topics[STATE_SNAPSHOTS]

        def write() -> None:
            for key, value in records:
                pipe.produce_raw(topic, key, value)
            self.last_snapshot_at = time.time()

        after = Delivery({})
        after.after.append(write)
        pipe.track(after)
        self._last_snapshot_mono = time.monotonic()
        self.metrics.observe_snapshot(time.perf_counter() - started)


def _without(rows: list, rejected: list[tuple[int, Any]]) -> list:
    """``rows`` less those whose index ``rejected`` names."""
    if not rejected:
        return rows
    drop = {i for i, _ in rejected}
    return [row for i, row in enumerate(rows) if i not in drop]


def _move_on(state: PartitionState, full: str, offset: int) -> None:
    """Nothing of ``full`` below ``offset`` is held back: its next offset is at least that."""
    state.next_offsets[full] = max(state.next_offsets.get(full, 0), offset)


def _off_the_loop(work: Callable[[], Any], name: str) -> asyncio.Future:
    """Run ``work`` in a daemon thread; a future of its result, on the running loop.

    Not the loop's executor for work a stopping worker may drop (the warm-up, a restore
    whose partitions are not decided any more): the interpreter joins executor threads at
    exit, so a SIGTERM during start-up waited for all of it (the warm-up imports River and
    SciPy and loads the kernels). Nothing of either needs finishing.
    """
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def run() -> None:
        try:
            result, settle = work(), done.set_result
        except BaseException as exc:  # whoever awaits it gets it
            result, settle = exc, done.set_exception
        try:
            loop.call_soon_threadsafe(lambda: done.done() or settle(result))
        except RuntimeError:  # the loop is closed: the worker stopped meanwhile
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return done
