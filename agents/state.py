"""Per-partition state that survives restarts and partition moves: snapshot plus replay.

Each input partition p has one ``PartitionCore``. Every ``snapshot_interval_s``
(staggered: one partition at a time, so no poll waits for all of them) it is
pickled, zlib-compressed and chunked to the compacted ``state.snapshots`` topic
with the input offsets it reflects, once the outputs of every record it
reflects are delivered. A worker given a partition loads the latest snapshot,
replays what came between it and the committed offsets through the core
(outputs discarded, against a scratch control board: they were published
before), and skips records the snapshot already covers.

Why not Faust tables: their changelog writes every update, which for per-order
account state doubles the produce volume; a periodic snapshot costs a few
hundred KB per partition per interval and the replay is bounded by it.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from streams.bounds import Limits, implausible
from streams.partitioning import belongs
from streams.topics import DEADLETTER, STATE_SNAPSHOTS, topic as topic_spec
from streams.wire import BatchDecoder
from tradeguard.core import ACCOUNT_TOPICS, INPUT_TOPICS, TICKER_TOPICS, Inputs, PartitionCore, Shared
from tradeguard.core.board import ControlBoard
from tradeguard.kafka import clients
from tradeguard.policy.config import PolicyConfig
from tradeguard.replay import provenance
from tradeguard.runtime.settings import Settings

__all__ = ["PartitionState", "SnapshotStore", "read_all", "restore_partitions"]

log = logging.getLogger("tradeguard.state")
CHUNK_BYTES = 512 * 1024  # well under Kafka's default 1 MiB message limit
KIND = "partition"


#: Longest a record waits for a lagging sibling topic (event-time alignment), seconds, unless
#: the caller gives its own bound (the engine: ``Settings.align_wait_ms``).
MAX_ALIGN_WAIT_S = 0.005
_SIDES = (ACCOUNT_TOPICS, TICKER_TOPICS)


@dataclass
class PartitionState:
    """One partition's core, where its inputs stand, and records held back for alignment."""

    core: PartitionCore
    skip_below: dict[str, int] = field(default_factory=dict)  # full topic -> offset
    next_offsets: dict[str, int] = field(default_factory=dict)  # full topic -> next offset
    generation: int = 0
    snapshot_at: float = field(default_factory=time.monotonic)
    # Per registry topic: received records not yet decided (offset order) and their offsets.
    _held: dict[str, list[Any]] = field(default_factory=dict)
    _held_offsets: dict[str, list[int]] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)  # next offset after what was received
    _last_ts: dict[str, int] = field(default_factory=dict)  # latest event time received
    _processed_ts: dict[str, int] = field(default_factory=dict)  # latest event time decided
    # Per side (account topics, ticker topics): since when records have waited.
    _held_since_by_side: dict[tuple[str, ...], float] = field(default_factory=dict)
    # Per registry topic: [first, end) offsets released since ``take_released`` (provenance).
    _released: dict[str, list[int]] = field(default_factory=dict)

    def stash(self, name: str, records: list[Any], offsets: list[int],
              next_offset: int | None) -> None:
        """Take valid records received for topic ``name`` (in offset order)."""
        if records:
            self._held.setdefault(name, []).extend(records)
            self._held_offsets.setdefault(name, []).extend(offsets)
            self._last_ts[name] = max(self._last_ts.get(name, records[0].ts),
                                      max(r.ts for r in records))
        if next_offset is not None:
            self._next[name] = next_offset

    @property
    def stashed(self) -> bool:
        return any(self._held.values())

    def last_ts(self, name: str) -> int:
        """The latest event time received on topic ``name`` (-1 before any)."""
        return self._last_ts.get(name, -1)

    def release(self, lagging: set[tuple[str, int]], p: int, now: float,
                account_limit: int | None = None,
                sides: tuple[tuple[str, ...], ...] = _SIDES,
                wait_s: float = MAX_ALIGN_WAIT_S) -> Inputs | None:
        """The held records of ``sides`` safe to decide now, as the core's inputs (or None).

        On each side (account topics, ticker topics), while a topic has records on the
        broker not received yet, only records up to the latest event time received from
        it are released: its next record cannot be earlier (a topic's records come in
        event-time order), so nothing released now could have needed it first. After
        ``wait_s`` a side's records all go: the worker decides now with what it has read,
        and the offsets released (``take_released``) say exactly what that was. ``account_limit`` caps the account side further, for what other partitions
        of this worker have not caught up on (logins of other accounts, ticker profiles).
        """
        inputs = Inputs()
        released = False
        for side in sides:
            since = self._held_since_by_side.get(side)
            waited = since is not None and now - since >= wait_s
            lag = [t for t in side if (t, p) in lagging]
            frontier = (min(self._last_ts.get(t, -1) for t in lag) if lag and not waited
                        else None)
            if side is ACCOUNT_TOPICS and account_limit is not None and not waited:
                frontier = account_limit if frontier is None else min(frontier, account_limit)
            side_released = False
            for name in side:
                held = self._held.get(name)
                if not held:
                    continue
                k = len(held)
                if frontier is not None:
                    k = 0
                    while k < len(held) and held[k].ts <= frontier:
                        k += 1
                if k:
                    inputs.add(name, held[:k])
                    self._processed_ts[name] = max(self._processed_ts.get(name, -1),
                                                   max(r.ts for r in held[:k]))
                    offsets = self._held_offsets[name]
                    span = self._released.setdefault(name, [offsets[0], offsets[k - 1] + 1])
                    span[1] = offsets[k - 1] + 1
                    del held[:k]
                    del offsets[:k]
                    side_released = True
            if not any(self._held.get(name) for name in side):
                self._held_since_by_side.pop(side, None)
            elif side_released or since is None:
                self._held_since_by_side[side] = now
            released |= side_released
        return inputs if released else None

    def take_released(self) -> dict[str, list[int]]:
        """Per registry topic, [first, end) offsets released since the last call; then forget.

        A topic's records are held and released in offset order, so what one step fed the
        core is one contiguous span per topic (less what was dead-lettered inside it).
        """
        out, self._released = self._released, {}
        return out

    def processed_ts(self, name: str) -> int:
        """The latest event time decided on topic ``name`` (-1 before any)."""
        return self._processed_ts.get(name, -1)

    def holds(self, name: str) -> bool:
        return bool(self._held.get(name))

    def parked(self) -> "PartitionState":
        """This partition's state as it stands once its outputs are delivered: the core,
        decided up to ``next_offsets``, without the records held back (they are read
        again). Taken up by ``resumable`` if the partition comes back untouched."""
        decided = dict(self.next_offsets)
        return PartitionState(self.core, skip_below=decided, next_offsets=dict(decided),
                              generation=self.generation, snapshot_at=self.snapshot_at,
                              _processed_ts=dict(self._processed_ts),
                              _last_ts=dict(self._processed_ts))

    def resumable(self, committed: dict[str, int | None], acked: dict[str, int]) -> bool:
        """Whether a parked state may decide its partition again, with no restore.

        ``committed``: per full input topic, the group's committed offset now (None:
        none); ``acked``: the offsets this worker's own commits were acknowledged at.
        Only if nothing was committed since by anyone else (every committed offset is
        this worker's own) and nothing past what this state decided: then nobody moved
        the partition on, and the records between the commit and ``next_offsets`` were
        decided here, outputs delivered, so they are skipped (``skip_below``), not
        decided twice, and the state goes on exactly as if the partition never left.
        """
        return self.not_resumable(committed, acked) is None

    def not_resumable(self, committed: dict[str, int | None], acked: dict[str, int]
                      ) -> str | None:
        """Why ``resumable`` says no (the first offset that disagrees), or None if it says yes."""
        for full, offset in committed.items():
            if offset != acked.get(full):
                return (f"{full}: committed {offset}, this worker's acknowledged commit "
                        f"{acked.get(full)}")
            if offset is not None and offset > self.next_offsets.get(full, -1):
                return (f"{full}: committed {offset}, past what it decided "
                        f"({self.next_offsets.get(full)})")
        return None

    def commit_offsets(self) -> dict[str, int]:
        """Per registry topic: the next offset that may be committed (nothing held below it)."""
        out = {}
        for name, next_offset in self._next.items():
            offsets = self._held_offsets.get(name)
            out[name] = offsets[0] if offsets else next_offset
        return out


def reader(settings: Settings) -> Consumer:
    """A consumer that only reads assigned partitions (never joins the group)."""
    return clients.reader(settings, f"{settings.app_id}-restore", **{"enable.partition.eof": True})


def read_all(consumer: Consumer, tps: list[TopicPartition], stop: dict[tuple[str, int], int]
             | None = None, timeout_s: float = 60.0) -> list[Any]:
    """Messages of ``tps`` from their given offsets to ``stop`` (exclusive) or to the end.

    With ``stop``, every message up to it is waited for (a partial replay would
    silently give a restored partition the wrong state). Without, the end is where
    every partition reported EOF and a further fetch came back empty: some brokers
    (the embedded Tansu) report end offsets short of the end.
    """
    if not tps:
        return []
    consumer.assign(tps)
    open_ = {(tp.topic, tp.partition) for tp in tps}
    at_end: set[tuple[str, int]] = set()
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while open_:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {sorted(open_)} did not reach "
                                   f"{'the requested offsets' if stop else 'the end'} within "
                                   f"{timeout_s:g} s")
            batch = consumer.consume(5000, 0.1)
            if not batch and stop is None and at_end >= open_:
                break  # every partition at EOF, and nothing more came
            for msg in batch:
                key = (msg.topic(), msg.partition())
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(key)
                    continue
                at_end.discard(key)
                if key not in open_:
                    continue
                if stop is not None and msg.offset() >= stop[key]:
                    open_.discard(key)
                    continue
                out.append(msg)
                if stop is not None and msg.offset() + 1 >= stop[key]:
                    open_.discard(key)
    finally:
        consumer.unassign()
    return out


class SnapshotStore:
    """Writes and reads partition snapshots on ``state.snapshots``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(STATE_SNAPSHOTS)

    def records(self, p: int, state: PartitionState) -> list[tuple[bytes, bytes]]:
        """The (key, value) records of a new snapshot of partition ``p`` (generation + 1)."""
        state.generation += 1
        state.snapshot_at = time.monotonic()
        blob = zlib.compress(state.core.to_bytes(), 1)
        slot = state.generation % 2  # two slots: a crash mid-write leaves the other intact
        chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        gen = state.generation.to_bytes(8, "big")
        out = [(f"{KIND}/{p}@{slot}#{i}".encode(), gen + chunk) for i, chunk in enumerate(chunks)]
        names = {self.settings.topic(n): n for n in INPUT_TOPICS}
        manifest = {"kind": KIND, "partition": p, "generation": state.generation, "slot": slot,
                    "chunks": len(chunks), "bytes": len(blob),
                    "offsets": {names[t]: o for t, o in state.next_offsets.items()},
                    "ts": int(time.time() * 1000)}
        out.append((f"{KIND}/{p}".encode(), orjson.dumps(manifest)))
        return out

    def load(self, consumer: Consumer, partitions: set[int]) -> dict[int, tuple[dict, bytes]]:
        """The latest complete snapshot of each of ``partitions``: manifest and state bytes."""
        meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None:
            raise RuntimeError(f"topic {self.topic} does not exist: run `tradeguard topics create`")
        latest: dict[str, bytes] = {}
        tps = [TopicPartition(self.topic, q, 0) for q in meta.partitions]
        for msg in read_all(consumer, tps):
            if msg.key() is not None and msg.value() is not None:
                latest[msg.key().decode("utf-8", "replace")] = msg.value()
        found = {}
        for p in partitions:
            prefix = f"{KIND}/{p}"
            if prefix not in latest:
                continue
            manifest = orjson.loads(latest[prefix])
            gen, chunks = manifest["generation"], []
            for i in range(manifest["chunks"]):
                value = latest.get(f"{prefix}@{manifest['slot']}#{i}")
                if value is None or int.from_bytes(value[:8], "big") != gen:
                    log.error("snapshot %s generation %d incomplete; rebuilding from scratch",
                              prefix, gen)
                    break
                chunks.append(value[8:])
            else:
                found[p] = (manifest, zlib.decompress(b"".join(chunks)))
        return found


def restore_partitions(settings: Settings, shared: Shared, partitions: set[int],
                       committed: dict[tuple[str, int], int | None],
                       policy: Callable[[], PolicyConfig],
                       factory: Callable[[], PartitionCore]) -> dict[int, PartitionState]:
    """Snapshot plus replay for each newly assigned partition (blocking; run it off the loop)."""
    started = time.monotonic()
    consumer = reader(settings)
    try:
        snapshots = SnapshotStore(settings).load(consumer, partitions)
        dead: set[tuple[str, int, int]] | None = None
        recorded: dict[str, Any] | None = None
        names = {settings.topic(n): n for n in INPUT_TOPICS}
        out = {}
        for p in sorted(partitions):
            manifest, blob = snapshots.get(p, (None, b""))
            core = None
            if manifest:
                try:
                    core = PartitionCore.from_bytes(blob, shared)
                except ValueError as exc:
                    # A snapshot of another format (written by an older release): rebuild
                    # the partition from its topics instead, as if there were none.
                    log.warning("partition %d: snapshot generation %s unusable (%s); "
                                "rebuilding from the topics", p, manifest.get("generation"), exc)
                    manifest = None
            if core is None:
                core = factory()
            snap = ({settings.topic(t): o for t, o in manifest["offsets"].items()}
                    if manifest else {})
            ranges, stop = [], {}
            for name in INPUT_TOPICS:
                full = settings.topic(name)
                end = committed.get((full, p))
                start = snap.get(full)
                if start is None:  # no snapshot, or none that saw this topic: from its start
                    start = max(consumer.get_watermark_offsets(
                        TopicPartition(full, p), timeout=10)[0], 0)
                if end is None or end <= start:
                    continue  # nothing between the snapshot and where consumption resumes
                ranges.append(TopicPartition(full, p, start))
                stop[(full, p)] = end
            if ranges and recorded is None:  # read once, for every partition that replays
                recorded = provenance.read(settings)
            done = {n: o for (t, q), o in committed.items()
                    if q == p and o is not None and t in names for n in (names[t],)}
            how = "steps (provenance)"
            if not ranges:  # consumption resumes where the snapshot (or nothing) left off
                replayed, how = 0, "(nothing to replay)"
            elif any(str(p) in step["released"] for step in recorded["steps"]):
                # Exact: the steps that fed p between the snapshot and the committed offsets,
                # fed again as they ran live (what each had read of every input).
                start = {names[t]: o for t, o in snap.items()}
                run = provenance.StepReplay(
                    settings, policy(), recorded["inputs"], recorded["replicated"],
                    recorded["dead"], only={p}, cores={p: core},
                    bounds={p: {n: (start.get(n, 0), done.get(n, 0)) for n in INPUT_TOPICS}})
                run.run(recorded["steps"])
                if run.refused_controls:
                    log.warning("partition %d: %d of %d controls named in engine.steps carry "
                                "no valid signature and were not applied (forged, or from a "
                                "release that recorded them unsigned)", p,
                                run.refused_controls, run.checked_controls)
                core = PartitionCore.from_bytes(run.cores[p].to_bytes(), shared)
                replayed = run.steps
            else:  # no provenance (workers of an older release): event-time order
                if dead is None and ranges:  # only when there is something to replay
                    dead = dead_lettered(settings, consumer, min(
                        (m["ts"] for m in (v[0] for v in snapshots.values())), default=None))
                replayed = replay(settings, core, read_all(consumer, ranges, stop), policy(),
                                  dead or frozenset())
                how = "records (no provenance: event-time order)"
            log.debug("partition %d: snapshot offsets %s, replayed up to %s", p, snap, stop)
            out[p] = PartitionState(core, skip_below=snap,
                                    generation=manifest["generation"] if manifest else 0)
            out[p].next_offsets = dict(snap)
            log.info("restored partition %d from %s plus %d replayed %s",
                     p, f"snapshot generation {manifest['generation']}" if manifest else "scratch",
                     replayed, how)
        log.info("restored %d partitions in %.2fs", len(partitions), time.monotonic() - started)
        return out
    finally:
        consumer.close()


#: How far before a snapshot was written its partition's later records may have been
#: dead-lettered: a snapshot is produced once the step it reflects is delivered, and later
#: steps (and their dead letters) go on meanwhile.
DEADLETTER_SLACK_MS = 300_000


def dead_lettered(settings: Settings, consumer: Consumer, since_ms: int | None
                  ) -> set[tuple[str, int, int]]:
    """(full source topic, partition, offset) of every input record the live path dead-lettered.

    Read from ``deadletter`` since ``since_ms`` less a slack (None: the whole topic). The
    restore leaves these out: above all those dead-lettered for an event time implausible
    against the live worker's clock, which no check at restore time can tell again.
    """
    full = settings.topic(DEADLETTER)
    meta = consumer.list_topics(full, timeout=10).topics.get(full)
    if meta is None or meta.error is not None:
        return set()
    tps = [TopicPartition(full, q, 0) for q in meta.partitions]
    if since_ms is not None:
        since = [TopicPartition(full, q, max(since_ms - DEADLETTER_SLACK_MS, 0)) for q in
                 meta.partitions]
        # offsets_for_times answers -1 (past the end) where nothing was written since then
        tps = [TopicPartition(full, tp.partition, tp.offset)
               for tp in consumer.offsets_for_times(since, timeout=10) if tp.offset >= 0]
    out = set()
    for msg in read_all(consumer, tps):
        try:
            d = orjson.loads(msg.value())
            out.add((d["source_topic"], int(d["partition"]), int(d["offset"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("unreadable dead letter at %d@%d", msg.partition(), msg.offset())
    return out


def replay(settings: Settings, core: PartitionCore, messages: list[Any],
           cfg: PolicyConfig, dead: set[tuple[str, int, int]] = frozenset()) -> int:
    """Feed already-decided records to ``core`` again, publishing nothing (a scratch board).

    ``dead``: (full topic, partition, offset) the live path dead-lettered, left out.
    """
    if not messages:
        return 0
    names = {settings.topic(n): n for n in INPUT_TOPICS}
    by_topic: dict[str, list[bytes]] = {}
    for msg in messages:
        if (msg.topic(), msg.partition(), msg.offset()) in dead:
            continue  # dead-lettered live, for whatever reason (event time included)
        # What the live path dead-lettered stays out here too (streams/partitioning.py).
        if belongs(msg.key(), msg.partition(), settings.partitions):
            by_topic.setdefault(names[msg.topic()], []).append(msg.value())
    inputs = Inputs()
    for name, values in by_topic.items():
        records, _ = BatchDecoder(topic_spec(name).schema).decode_many(values)
        # What the live path dead-lettered (bad, or beyond the plausible bounds) stays out.
        beyond = {i for i, _ in implausible(name, records, Limits.from_settings(settings))}
        records = [r for i, r in enumerate(records) if i not in beyond]
        inputs.add(name, records)
    core.process(inputs, cfg, board=ControlBoard())
    return len(messages)
