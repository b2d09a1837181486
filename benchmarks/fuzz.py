"""Fuzzed input records, generated from the JSON Schema files and mutated, each with its verdict.

The valid records come from ``streams/jsonschema/*.schema.json`` (the files gateways read):
:func:`from_schema` turns the keywords the contract uses (type, null, enum, bounds, lengths,
required, additional properties) into Hypothesis strategies. (hypothesis-jsonschema would do
this, but its 0.23 release calls Hypothesis internals that 6.1xx no longer has.) Event time is
kept within the worker's clock bounds and quantities and prices within the plausible bounds,
so a "valid" record is one the engine must use. Then a share of them is broken in one of the
ways a gateway or an attacker breaks records; each broken record knows the field its
dead letter must name (None: the whole record).

>>> cases = generate("orders", 200, seed=3)
>>> sum(c.valid for c in cases) > 50, {c.topic for c in cases}
(True, {'orders'})
>>> all(c.value is None or isinstance(c.value, bytes) for c in cases)
True
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from streams.export import SCHEMA_DIR
from streams.topics import topic

__all__ = ["BEYOND_SCHEMA", "Case", "INPUT_TOPICS", "MUTATIONS", "from_schema", "generate"]

INPUT_TOPICS = ("orders", "auth.events", "market.trades", "feedback")
KEY_FIELD = {"orders": "account_id", "auth.events": "account_id", "feedback": "account_id",
             "market.trades": "ticker"}
_JSON_TYPES = {"string": "x", "integer": 7, "number": 2.5, "boolean": True, "array": [1],
               "object": {"a": 1}, "null": None}


@dataclass(frozen=True)
class Case:
    topic: str
    key: str
    value: bytes | None
    valid: bool
    mutation: str  # "none" for valid records
    field: str | None  # the field a dead letter must name (None: the whole record)


def schema_of(name: str) -> dict:
    return json.loads((Path(SCHEMA_DIR) / f"{topic(name).schema.name}.schema.json").read_text())


def _field(spec: dict) -> st.SearchStrategy:
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    options = []
    for t in types:
        if t == "null":
            options.append(st.none())
        elif "enum" in spec:
            options.append(st.sampled_from([v for v in spec["enum"] if v is not None]))
        elif t == "string":
            options.append(st.text(min_size=spec.get("minLength", 0),
                                   max_size=min(spec.get("maxLength", 40), 40)))
        elif t == "integer":
            low = spec.get("minimum", spec.get("exclusiveMinimum", -(2 ** 53)) + 1
                           if "exclusiveMinimum" in spec else -(2 ** 53))
            options.append(st.integers(int(low), int(spec.get("maximum", 2 ** 53))))
        elif t == "number":
            options.append(st.floats(spec.get("minimum", spec.get("exclusiveMinimum", -1e12)),
                                     spec.get("maximum", 1e12), allow_nan=False,
                                     allow_infinity=False,
                                     exclude_min="exclusiveMinimum" in spec))
        elif t == "boolean":
            options.append(st.booleans())
        elif t == "object":
            options.append(st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=3))
        elif t == "array":
            options.append(st.lists(st.integers(0, 9), max_size=3))
    return st.one_of(options)


def from_schema(schema: dict, overrides: dict[str, st.SearchStrategy] | None = None
                ) -> st.SearchStrategy[dict]:
    """Records valid under ``schema`` (the subset of JSON Schema our contract uses)."""
    overrides = overrides or {}
    required = set(schema["required"])
    fields = {}
    for name, spec in schema["properties"].items():
        strat = overrides.get(name, _field(spec))
        fields[name] = strat if name in required else st.one_of(st.just(_ABSENT), strat)
    extra = st.dictionaries(st.text(min_size=1, max_size=8).filter(
        lambda k: k not in schema["properties"]), st.integers(0, 9), max_size=2)
    return st.builds(lambda rec, more: {**more, **{k: v for k, v in rec.items()
                                                   if v is not _ABSENT}},
                     st.fixed_dictionaries(fields), extra)


_ABSENT = object()


def _realistic(name: str, now_ms: int) -> dict[str, st.SearchStrategy]:
    """Within the worker's bounds: event time near its clock, plausible sizes and prices."""
    ts = st.integers(now_ms - 3_600_000, now_ms + 60_000)
    out = {"ts": ts, "account_id": st.from_regex(r"\Aacct-[0-9]{1,5}\Z"),
           "ticker": st.sampled_from(("7203", "6758", "4592", "9984", "NASDAQ:ZZZZ"))}
    if name == "orders":
        out |= {"qty": st.integers(1, 100_000), "price": st.none() | st.floats(0.1, 100_000.0),
                "holdings_value": st.none() | st.floats(0.0, 1e10)}
    if name == "market.trades":
        out |= {"qty": st.integers(1, 1_000_000), "price": st.floats(0.1, 100_000.0)}
    return out


def _mutate(rng: random.Random, record: dict, schema: dict) -> tuple[Any, str, str | None]:
    """(broken value: dict, bytes or None, mutation name, field its dead letter names)."""
    props = schema["properties"]
    required = schema["required"]
    kind = rng.choice(MUTATIONS)
    f = rng.choice(required)
    spec = props[f]
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    if kind == "drop_required":
        return {k: v for k, v in record.items() if k != f}, kind, f
    if kind == "wrong_type":
        # A value of a JSON type the field does not take (never an integral float: JSON
        # Schema calls 1.0 an integer, the decoder does not; see docs/security.md).
        wrong = [t for t in _JSON_TYPES if t not in types and not (
            t == "integer" and "number" in types) and not ("enum" in spec and t == "string")]
        return {**record, f: _JSON_TYPES[rng.choice(wrong)]}, kind, f
    if kind == "out_of_range":
        numeric = [n for n in required if props[n]["type"] in ("integer", "number") and (
            "minimum" in props[n] or "exclusiveMinimum" in props[n] or "maximum" in props[n])]
        if numeric:
            f = rng.choice(numeric)
            spec = props[f]
            bad = rng.choice([v for v in (
                spec.get("minimum", spec.get("exclusiveMinimum")),) if v is not None] or [0])
            value = int(bad) - rng.choice((1, 10 ** 6)) if "maximum" not in spec or rng.random() \
                < 0.5 else int(spec["maximum"]) + 1
            if f == "ts":  # the absurd timestamps
                value = rng.choice((0, 2 ** 62, 10 ** 15, -1))
            return {**record, f: value}, kind, f
        kind = "bad_enum"
    if kind == "bad_enum":
        enums = [n for n in required if "enum" in props[n]]
        if enums:
            f = rng.choice(enums)
            return {**record, f: "no-such-" + f}, kind, f
        kind = "empty_string"
    if kind == "empty_string":
        strings = [n for n in required if props[n]["type"] == "string" and "enum" not in props[n]]
        f = rng.choice(strings)
        return {**record, f: ""}, kind, f
    if kind == "too_long":
        longs = [n for n in props if props[n].get("maxLength")]
        f = rng.choice(longs)
        return {**record, f: "X" * rng.choice((props[f]["maxLength"] + 1, 200_000))}, kind, f
    if kind == "implausible":  # valid JSON Schema, impossible trade (streams/bounds.py)
        if "qty" in props:
            f = rng.choice(("qty", "price")) if "price" in required else "qty"
            return {**record, f: 10 ** 12 if f == "qty" else 5e9}, kind, f
        kind = "huge_integer"
    if kind == "huge_integer":  # a 400-digit number
        ints = [n for n in required if props[n]["type"] == "integer"]
        f = rng.choice(ints)
        raw = orjson.dumps({**record, f: 7}).replace(f'"{f}":7'.encode(),
                                                    f'"{f}":{"9" * 400}'.encode())
        return raw, kind, f
    raw = orjson.dumps(record)
    if kind == "truncated":
        return raw[: rng.randrange(1, max(len(raw) - 1, 2))], kind, None
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), kind, None
    if kind == "invalid_utf8":
        return raw.replace(b'":"', b'":"\xff\xfe', 1), kind, None
    if kind == "not_an_object":
        return rng.choice((b"[1, 2, 3]", b"42", b'"order"', b"null", b"true")), kind, None
    if kind == "nan":
        nums = [n for n in required if props[n]["type"] in ("integer", "number")]
        f = rng.choice(nums)
        return orjson.dumps({**record, f: 7}).replace(f'"{f}":7'.encode(),
                                                     f'"{f}":NaN'.encode()), kind, None
    if kind == "deep_nesting":
        return (b'{"nest": ' + b"[" * 5000 + b"]" * 5000 + b", " + raw[1:]), kind, None
    if kind == "tombstone":
        return None, kind, None
    raise AssertionError(kind)


MUTATIONS = ("drop_required", "wrong_type", "out_of_range", "bad_enum", "empty_string",
             "too_long", "implausible", "huge_integer", "truncated", "garbage", "invalid_utf8",
             "not_an_object", "nan", "deep_nesting", "tombstone")
#: Broken in a way the JSON Schema itself cannot see: the contract's integers are 64-bit and
#: its values plausible, which the engine enforces beyond the schema.
BEYOND_SCHEMA = ("implausible", "huge_integer")


def generate(name: str, count: int, seed: int = 0, invalid_share: float = 0.5,
             now_ms: int | None = None) -> list[Case]:
    """``count`` cases for topic ``name``: about ``invalid_share`` of them broken."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    schema = schema_of(name)
    strategy = from_schema(schema, _realistic(name, now))
    records: list[dict] = []

    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=True)
    @given(strategy)
    def collect(record: dict) -> None:
        records.append(record)

    while len(records) < count:  # Hypothesis may stop early on a small space; go again
        before = len(records)
        collect()
        if len(records) == before:
            break
    rng = random.Random(seed)
    cases = []
    for i, record in enumerate(records[:count]):
        if name == "orders":
            record["order_id"] = f"fz{seed}-{i}"  # unique: one decision per order is checked
        key = str(record.get(KEY_FIELD[name]) or "fuzz")
        if rng.random() < invalid_share:
            broken, kind, field = _mutate(rng, record, schema)
            value = broken if broken is None or isinstance(broken, bytes) else orjson.dumps(broken)
            cases.append(Case(name, key, value, False, kind, field))
        else:
            cases.append(Case(name, key, orjson.dumps(record), True, "none", None))
    return cases
