"""Render the contract as files gateways can read: JSON Schema per record and the topic list."""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.records import SCHEMAS
from streams.topics import TOPICS

__all__ = ["SCHEMA_DIR", "export", "rendered"]

SCHEMA_DIR = Path(__file__).with_name("jsonschema")


def rendered() -> dict[str, bytes]:
    """File name -> content, exactly as shipped in ``streams/jsonschema/``."""
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    files = {f"{name}.schema.json": orjson.dumps(s.json_schema(), option=opts)
             for name, s in SCHEMAS.items()}
    files["topics.json"] = orjson.dumps(
        [
            {
                "name": t.name,
                "key": t.key,
                "schema": f"{t.schema.name}.schema.json",
                "compacted": t.compacted,
                "retention_ms": None if t.compacted else t.retention_ms,
                "internal": t.internal,
                "producer": t.producer,
                "consumers": t.consumers,
                "description": t.description,
            }
            for t in TOPICS
        ],
        option=opts,
    )
    return files


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written
