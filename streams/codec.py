"""Bytes on the wire: JSON values via orjson, UTF-8 string keys, dead letters."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streams.schema import RecordError

__all__ = ["deadletter_record", "decode_key", "encode_key", "encode_value"]


def encode_value(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def encode_key(key: str) -> bytes:
    return key.encode("utf-8")


def decode_key(raw: bytes | None) -> str | None:
    return None if raw is None else bytes(raw).decode("utf-8", errors="replace")


def deadletter_record(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: RecordError | Exception,
    now_ms: int,
) -> dict[str, Any]:
    """The dead-letter record for a value we could not use, keeping its original bytes."""
    return {
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": decode_key(key),
        "error": str(error),
        "field": getattr(error, "field", None),
        "original_b64": None if value is None else base64.b64encode(bytes(value)).decode("ascii"),
        "ts": now_ms,
    }
