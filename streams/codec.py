"""Bytes on the wire: JSON values via orjson, UTF-8 string keys, dead letters."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streams.schema import RecordError

__all__ = ["MAX_ORIGINAL_BYTES", "deadletter_record", "decode_key", "encode_key", "encode_value"]


def encode_value(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def encode_key(key: str) -> bytes:
    return key.encode("utf-8")


def decode_key(raw: bytes | None) -> str | None:
    return None if raw is None else bytes(raw).decode("utf-8", errors="replace")


#: Dead letters keep at most this much of the original value (and of its key): a record near
#: the broker's 1 MB limit, base64-encoded inside its dead letter, would not fit in one, and a
#: dead letter that cannot be produced would stop the worker on that record for ever.
MAX_ORIGINAL_BYTES = 512 * 1024
MAX_KEY_CHARS = 1024


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
    """The dead-letter record for a value we could not use, keeping its original bytes.

    A value longer than :data:`MAX_ORIGINAL_BYTES` keeps its first bytes, and the error says
    so (nothing is cut silently); the source topic, partition and offset find the rest.

    >>> d = deadletter_record(source_topic="orders", partition=0, offset=7, key=b"k",
    ...                       value=b"x" * (MAX_ORIGINAL_BYTES + 1), error=RecordError("bad"),
    ...                       now_ms=0)
    >>> d["error"]
    'bad (original value 524289 bytes: the first 524288 are kept here)'
    """
    message = str(error)
    if value is not None and len(value) > MAX_ORIGINAL_BYTES:
        message += (f" (original value {len(value)} bytes: the first {MAX_ORIGINAL_BYTES} are "
                    "kept here)")
        value = bytes(value[:MAX_ORIGINAL_BYTES])
    text_key = decode_key(key)
    if text_key is not None and len(text_key) > MAX_KEY_CHARS:
        message += f" (key {len(text_key)} characters: the first {MAX_KEY_CHARS} are kept)"
        text_key = text_key[:MAX_KEY_CHARS]
    return {
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": text_key,
        "error": message,
        "field": getattr(error, "field", None),
        "original_b64": None if value is None else base64.b64encode(bytes(value)).decode("ascii"),
        "ts": now_ms,
    }
