"""``tradeguard controls release ...`` (break-glass) and ``tradeguard audit verify``.

The break-glass release follows the same rules as the console (docs/security.md):
it reads the target's control in force from the compacted topic, so its record
carries the next ``seq``; it writes a signed audit record of its own chain
(``writer`` ``cli:<host>:<run>``, auth ``cli``) and only once the broker has
acknowledged it does it publish the signed release. ``audit verify`` reads the
whole audit topic and checks every signature and every writer's hash chain.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from typing import Any, Iterator

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from streams.records import ACCOUNT_CONTROL, TICKER_CONTROL
from streams.schema import RecordError
from streams.signing import ControlKeys, check, sign
from streams.topics import AUDIT, CONTROLS_ACCOUNTS, CONTROLS_TICKERS
from tradeguard.kafka import clients
from tradeguard.kafka.producer import RecordProducer
from tradeguard.console.audit import AuditChain, Verdict, verify
from tradeguard.console.operations import audit_record
from tradeguard.core.board import ControlBoard
from tradeguard.runtime.settings import Settings

__all__ = ["board_from_topics", "read_to_end", "release", "verify_audit"]

_KIND = {"ticker": (CONTROLS_TICKERS, TICKER_CONTROL, "release_halt"),
         "account": (CONTROLS_ACCOUNTS, ACCOUNT_CONTROL, "release_account")}


def read_to_end(settings: Settings, name: str, timeout_s: float = 30.0
                ) -> Iterator[tuple[Any, bool]]:
    """(message, the topic starts past offset 0 on its partition) for every record held now."""
    consumer = clients.reader(settings, "cli")
    try:
        full = settings.topic(name)
        meta = consumer.list_topics(full, timeout=10).topics.get(full)
        if meta is None or meta.error is not None or not meta.partitions:
            raise KafkaException(f"topic {full} does not exist: run `tradeguard topics create`")
        ends, trimmed = {}, {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(full, p), timeout=10)
            trimmed[p] = low > 0
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(full, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise KafkaException(f"could not read {full} to its end within {timeout_s:g}s")
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
                yield msg, trimmed[msg.partition()]
            # A transactional writer's commit marker takes the last offset and is never
            # handed over: the consumer's position passes it.
            for tp in consumer.position([TopicPartition(full, p) for p in ends]):
                if tp.offset >= ends.get(tp.partition, 0):
                    ends.pop(tp.partition, None)
    finally:
        consumer.close()


def board_from_topics(settings: Settings, keys: ControlKeys) -> ControlBoard:
    """The controls in force, as a worker's board would hold them (signed, in seq order)."""
    board = ControlBoard()
    for name, schema, accept in ((CONTROLS_TICKERS, TICKER_CONTROL, board.accept_ticker),
                                 (CONTROLS_ACCOUNTS, ACCOUNT_CONTROL, board.accept_account)):
        for msg, _ in read_to_end(settings, name):
            try:
                record = schema.decode(msg.value())
                check(orjson.loads(msg.value()), keys)  # as signed, not as decoded
            except (RecordError, TypeError):
                continue  # what no worker enforces does not count here either
            accept(record)
    return board


def release(settings: Settings, kind: str, key: str, reason: str,
            operator: str | None = None) -> dict[str, Any]:
    """Audit, then publish, a signed release of ``key``; return the release record."""
    topic, schema, action = _KIND[kind]
    keys = ControlKeys.from_settings(settings)
    operator = operator or getpass.getuser()
    board = board_from_topics(settings, keys)
    now = int(time.time() * 1000)
    record = {("ticker" if kind == "ticker" else "account_id"): key, "action": "release",
              "reason": reason, "evidence": {"operator": {"user": operator, "auth": "cli"}},
              "source": f"cli:{operator}", "ts": now, "seq": board.next_seq(kind, key)}
    if kind == "ticker":
        record["expires_at"] = None
    record = sign(schema.validate(record), keys)
    chain = AuditChain(f"cli:{socket.gethostname()}:{uuid.uuid4().hex[:8]}", keys)
    audit = audit_record(actor=operator, role=None, auth="cli", action=action,
                         target_kind=kind, target=key, reason=reason, outcome="done",
                         detail=f"break-glass: tradeguard controls; wrote release to {topic}",
                         before=board.last_record(kind, key), after=record, now_ms=now)
    producer = RecordProducer(settings, **{"linger.ms": 0})
    sealed = chain.seal(audit)
    producer.send(AUDIT, sealed)
    producer.flush(10.0)  # KafkaException: not audited, so not done
    chain.advance(sealed)
    try:
        producer.send(topic, record)
        producer.flush(10.0)
    except KafkaException as exc:
        failed = chain.seal({**audit, "audit_id": uuid.uuid4().hex, "outcome": "failed",
                             "after": None, "detail": f"audit {audit['audit_id']} recorded it, "
                             f"but it could not be written: {exc}"})
        retry = RecordProducer(settings)
        retry.send(AUDIT, failed)
        retry.flush(10.0)
        raise
    return record


def verify_audit(settings: Settings) -> Verdict:
    """Every audit record held, its signature and its writer's chain checked."""
    keys = ControlKeys.from_settings(settings)
    records, trimmed = [], False
    for msg, cut in read_to_end(settings, AUDIT):
        trimmed |= cut
        try:
            value = orjson.loads(msg.value())
        except (orjson.JSONDecodeError, TypeError):
            value = {"audit_id": f"offset {msg.partition()}@{msg.offset()}", "signature": None}
        records.append(value if isinstance(value, dict) else {"signature": None})
    return verify(records, keys, partial_start=trimmed)

