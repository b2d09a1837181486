"""The decision record is declared once (issue 24): ``DECISION`` in ``streams/records.py``.

The JSON Schema gateways read is rendered from it, and ``streams.wire`` builds its encoder's
struct from it. Two declarations stay written out, because they are read as code: the core's
``DecisionBlock`` (columns with their own types) and replay's ``Decided`` (one side's decision,
compared). Each must name the fields the core decides (``DECIDED_FIELDS``), in the declared
order, so a field added to one of them and not to the others fails here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from streams.records import DECIDED_FIELDS, DECISION, DECISION_STAMPED
from streams.wire import BatchDecoder, encode_decisions
from tradeguard.core.blocks import DecisionBlock
from tradeguard.replay.compare import Decided

pytestmark = pytest.mark.quick


def _block() -> DecisionBlock:
    return DecisionBlock(["o1", "o2"], ["a1", "a2"], ["7203", "6758"], ["buy", "sell"],
                         np.array([0, 2], dtype=np.int8), np.array([0.125, 0.9]),
                         [b"[]", b'[{"code":"new_device","value":1.0}]'], ["m1", "m2"],
                         "policy-1", np.array([1_744_761_600_000, 1_744_761_600_001]))


def test_the_core_decides_every_field_but_the_stamped_ones():
    assert set(DECISION_STAMPED) <= {f.name for f in DECISION.fields}
    assert [f.name for f in dataclasses.fields(DecisionBlock)] == list(DECIDED_FIELDS)
    assert list(_block().rows()[0]) == list(DECIDED_FIELDS)


def test_replay_compares_the_fields_the_core_decides():
    names = [f.name for f in dataclasses.fields(Decided)]
    assert names == [*DECIDED_FIELDS, "decided_ms"]  # decided_ms: the published ``ts``


def test_what_the_worker_publishes_decodes_to_the_block_it_encoded():
    block = _block()
    values = encode_decisions(block, 1_744_761_601_000, "w1/7")
    assert [list(orjson.loads(v)) for v in values] == [[f.name for f in DECISION.fields]] * 2
    records, bad = BatchDecoder(DECISION).decode_many(values)
    assert not bad
    for row, record in zip(block.rows(), records):
        assert {name: getattr(record, name) for name in DECIDED_FIELDS} == row
        assert (record.ts, record.step) == (1_744_761_601_000, "w1/7")
        assert Decided.from_record(record) == Decided(
            *(row[n] if n != "reasons" else orjson.dumps(row[n]) for n in DECIDED_FIELDS),
            decided_ms=record.ts)
