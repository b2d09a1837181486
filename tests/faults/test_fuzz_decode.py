"""Fuzz of the decode path: records generated from the JSON Schema files, half of them broken
in one of 15 ways (benchmarks/fuzz.py). Every valid record decodes; every broken one is refused
with a reason, naming the field when one field is to blame; nothing raises. The JSON Schema
is the oracle for what is valid. (``python -m benchmarks.faults --only fuzz`` sends 100,000 of
them through a real worker.)"""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator

from benchmarks.fuzz import BEYOND_SCHEMA, INPUT_TOPICS, generate, schema_of
from streams.bounds import Limits, implausible
from streams.topics import topic
from streams.wire import BatchDecoder

PER_TOPIC = 600


@pytest.mark.parametrize("name", INPUT_TOPICS)
def test_valid_records_decode_and_broken_ones_are_refused_with_their_field(name):
    cases = generate(name, PER_TOPIC, seed=7)
    records, bad = BatchDecoder(topic(name).schema).decode_many([c.value for c in cases])
    refused = dict(bad)
    # The engine's checks beyond the schema, on what decoded (streams/bounds.py).
    decoded = [i for i in range(len(cases)) if i not in refused]
    for j, error in implausible(name, records, Limits()):
        refused[decoded[j]] = error
    oracle = Draft202012Validator(schema_of(name))
    mutations = set()
    for i, c in enumerate(cases):
        mutations.add(c.mutation)
        if c.valid:
            assert i not in refused, (c, refused.get(i))
            assert oracle.is_valid(orjson.loads(c.value)), c
            continue
        assert i in refused, c
        if c.field is not None and c.mutation != "truncated":
            assert refused[i].field == c.field, (c.mutation, c.field, str(refused[i]))
        if c.value is not None and c.mutation not in BEYOND_SCHEMA and c.field is not None:
            assert not oracle.is_valid(orjson.loads(c.value)), c  # broken by the contract too
    assert len(mutations) >= 12, mutations
