"""``tradeguard tail TOPIC``: follow a topic, one readable line per record, filtered.

For people at a terminal. Older librdkafka tools (Debian's kcat) cannot read
the embedded broker; this reads any broker the engine runs on, by manual
assignment of every partition (no consumer group, nothing committed).

>>> print(render_line("decisions", 3, 1042, 1_764_072_927_123, b"acct-1",
...     b'{"order_id":"o-1","action":"block","score":0.93,'
...     b'"reasons":[{"code":"ticker_halted","value":1.0}],"model_version":"policy v1",'
...     b'"order_ts":1764072927110}'))
... # doctest: +NORMALIZE_WHITESPACE
2025-11-25T12:15:27.123Z decisions[3]@1042 key=acct-1 BLOCK order_id=o-1 score=0.93
    reasons=[ticker_halted=1] model_version="policy v1" order_ts=2025-11-25T12:15:27.110Z
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from streams.codec import decode_key
from streams.topics import topic
from tradeguard.kafka import clients as kafka
from tradeguard.runtime.settings import Settings

__all__ = ["Filters", "render_line", "tail"]

_EPOCH_MS_RANGE = (946_684_800_000, 4_102_444_800_000)  # 2000-01-01 .. 2100-01-01
_LEAD = ("action", "event", "label")  # shown first, upper-case: what the record says happened


class Filters:
    """Keep records whose account_id / ticker / action equal the given values (None: any).

    A filter on a field the topic does not carry, or an action the topic never
    has, is an error naming it rather than a tail that prints nothing forever.
    """

    def __init__(self, name: str, account: str | None = None, ticker: str | None = None,
                 action: str | None = None) -> None:
        fields = {f.name: f for f in topic(name).schema.fields}
        self.wanted = {k: v for k, v in (("account_id", account), ("ticker", ticker),
                                         ("action", action)) if v is not None}
        for field_name, value in self.wanted.items():
            if field_name not in fields:
                raise ValueError(f"topic {name} has no {field_name} field to filter on")
            enum = fields[field_name].enum
            if enum and value not in enum:
                raise ValueError(f"--{field_name.split('_')[0]} {value!r}: {name} records have "
                                 f"{field_name} one of {list(enum)}")

    def match(self, record: Any) -> bool:
        if not self.wanted:
            return True
        return isinstance(record, dict) and all(record.get(k) == v
                                                for k, v in self.wanted.items())


def render_line(name: str, partition: int, offset: int, ts_ms: int | None, key: bytes | None,
                value: bytes | None) -> str:
    """One line: time, where, key, then the record's fields as ``field=value``."""
    when = _time(ts_ms) if ts_ms and ts_ms > 0 else "-"
    head = f"{when} {name}[{partition}]@{offset} key={decode_key(key)}"
    if value is None:
        return f"{head} <tombstone>"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"{head} <{len(value)} bytes, not JSON: {bytes(value[:24])!r}>"
    if not isinstance(record, dict):
        return f"{head} {_value(record)}"
    lead = next((k for k in _LEAD if isinstance(record.get(k), str)), None)
    fields = [f"{k}={_time(v) if _is_time(k, v) else _value(v)}" for k, v in record.items()
              if k != lead]
    return " ".join([head, *([record[lead].upper()] if lead else []), *fields])


def _is_time(key: str, v: Any) -> bool:
    """Epoch-millisecond fields (ts, order_ts, expires_at, ...) between 2000 and 2100."""
    return ((key == "ts" or key.endswith(("_ts", "_at"))) and type(v) is int
            and _EPOCH_MS_RANGE[0] <= v < _EPOCH_MS_RANGE[1])


def _time(ms: int) -> str:
    return (datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"))


def _value(v: Any) -> str:
    if isinstance(v, list) and v and all(isinstance(r, dict) and set(r) == {"code", "value"}
                                         for r in v):
        return "[" + ",".join(f"{r['code']}={_value(r['value'])}" for r in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str) and v and not any(c.isspace() or c in '"=' for c in v):
        return v
    return orjson.dumps(v).decode()


def tail(settings: Settings, name: str, filters: Filters, *, from_beginning: bool = False,
         limit: int | None = None, raw: bool = False, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr) -> int:
    """Print matching records of registry topic ``name`` as they come; stop after ``limit``."""
    full = settings.topic(name)
    consumer = kafka.reader(settings, "tail")
    try:
        parts = kafka.partitions(consumer, settings, name)
        starts = (dict.fromkeys(parts, OFFSET_BEGINNING) if from_beginning
                  else kafka.end_offsets(consumer, full, parts))
        consumer.assign([TopicPartition(full, p, starts[p]) for p in parts])
        print(f"following {full} ({len(parts)} partitions) from the "
              f"{'beginning' if from_beginning else 'end'}; Ctrl-C stops", file=err, flush=True)
        shown = 0
        while limit is None or shown < limit:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"tail: {full}: {msg.error()}", file=err, flush=True)
                continue
            value = msg.value()
            try:
                record = None if value is None else orjson.loads(value)
            except orjson.JSONDecodeError:
                record = None
            if not filters.match(record):
                continue
            line = (value.decode("utf-8", "replace") if raw and value is not None else
                    render_line(name, msg.partition(), msg.offset(), msg.timestamp()[1],
                                msg.key(), value))
            print(line, file=out, flush=True)
            shown += 1
        return 0
    finally:
        consumer.close()
