"""Control records have a type where they are built (issue 24): ``streams/controls.py``.

``TickerControl`` and ``AccountControl`` name the fields of ``TICKER_CONTROL`` and
``ACCOUNT_CONTROL`` that a writer fills in, in the schema's order (the wire form is their
``record()``); ``seq`` and ``signature`` come later (the board, ``sign``). A field added to a
schema and not to its type, or the other way round, fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from streams.controls import AccountControl, TickerControl
from streams.records import ACCOUNT_CONTROL, TICKER_CONTROL
from streams.signing import ControlKeys, check, sign

pytestmark = pytest.mark.quick

AUTHORITY = ["seq", "signature"]


@pytest.mark.parametrize("kind, schema", [(TickerControl, TICKER_CONTROL),
                                          (AccountControl, ACCOUNT_CONTROL)])
def test_a_control_type_names_its_schema_fields_in_order(kind, schema):
    assert [f.name for f in dataclasses.fields(kind)] + AUTHORITY == [
        f.name for f in schema.fields]


def test_the_wire_record_is_the_dict_it_replaces_and_signs_alike():
    halt = TickerControl(ticker="7203", action="halt_buys", reason="coordinated buying",
                         evidence={"accounts": 3}, expires_at=1_744_761_900_000,
                         source="engine", ts=1_744_761_600_000).record()
    written = {"ticker": "7203", "action": "halt_buys", "reason": "coordinated buying",
               "evidence": {"accounts": 3}, "expires_at": 1_744_761_900_000,
               "source": "engine", "ts": 1_744_761_600_000}
    assert list(halt.items()) == list(written.items())  # same keys, same order
    keys = ControlKeys.development()
    assert sign(halt, keys) == sign(written, keys)
    check(sign(halt, keys), keys)
    TICKER_CONTROL.validate(halt)
    freeze = AccountControl(account_id="a-1", action="freeze", reason="r", evidence=None,
                            source="cli:x", ts=5).record(seq=3)
    assert list(freeze) == [f.name for f in ACCOUNT_CONTROL.fields][:-1]
    ACCOUNT_CONTROL.validate(freeze)


def test_an_action_outside_the_vocabulary_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="action: must be one of"):
        TickerControl("7203", "halt", "r", None, None, "engine", 1)
