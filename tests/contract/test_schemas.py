"""The wire contract: shipped JSON Schema files, validation errors that name the field."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.export import SCHEMA_DIR, rendered
from streams.records import ORDER, SCHEMAS, TRADE
from streams.schema import RecordError
from streams.topics import TOPICS, topic

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def test_shipped_schema_files_are_exactly_what_the_code_declares():
    files = rendered()
    shipped = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.json")}
    assert shipped == files, "run `tradeguard contract export` and commit streams/jsonschema/"


def test_every_topic_has_a_schema_file_and_a_key():
    listed = orjson.loads(rendered()["topics.json"])
    assert [t["name"] for t in listed] == [t.name for t in TOPICS]
    for t in listed:
        assert t["schema"] in rendered()
        assert t["key"]
    assert topic("controls.tickers").compacted and topic("controls.accounts").compacted
    assert topic("orders").config()["cleanup.policy"] == "delete"
    with pytest.raises(KeyError, match="unknown topic 'nope'"):
        topic("nope")


def test_json_schema_describes_required_fields_and_constraints():
    schema = ORDER.json_schema()
    assert set(schema["required"]) == {"order_id", "account_id", "ticker", "side", "qty", "price",
                                       "margin", "session_id", "ts"}
    assert schema["properties"]["qty"] == {"type": "integer", "description": "Quantity in shares, > 0.",
                                           "exclusiveMinimum": 0}
    assert schema["properties"]["price"]["type"] == ["number", "null"]
    assert schema["properties"]["side"]["enum"] == ["buy", "sell"]


VALID_ORDER = {"order_id": "o1", "account_id": "a1", "ticker": "7203", "side": "buy", "qty": 100,
               "price": 2500.0, "margin": False, "session_id": None, "ts": 1_760_000_000_000}


@pytest.mark.parametrize("mutation, message", [
    ({"qty": 0}, "qty: must be > 0, got 0"),
    ({"qty": 1.5}, "qty: expected integer, got number"),
    ({"qty": True}, "qty: expected integer, got boolean"),
    ({"price": -1}, "price: must be > 0, got -1"),
    ({"price": "12"}, "price: expected number, got string"),
    ({"side": "SELL"}, "side: must be one of ['buy', 'sell'], got 'SELL'"),
    ({"margin": "no"}, "margin: expected boolean, got string"),
    ({"ts": -5}, "ts: must be >= 946684800000, got -5"),
    ({"ts": 0}, "ts: must be >= 946684800000, got 0"),
    ({"ts": 2**62}, "ts: must be <= 4102444800000, got 4611686018427387904"),
    ({"ts": 10**15}, "ts: must be <= 4102444800000, got 1000000000000000"),
    ({"account_id": ""}, "account_id: must not be empty"),
    ({"order_id": None}, "order_id: must not be null"),
    ({"order_type": "iceberg"}, "order_type: must be one of"),
])
def test_bad_orders_are_rejected_with_the_field_named(mutation, message):
    with pytest.raises(RecordError) as err:
        ORDER.validate({**VALID_ORDER, **mutation})
    assert str(err.value).startswith(message)
    assert err.value.field == next(iter(mutation))


def test_decode_errors_for_whole_records():
    for raw, message in [(b"{", "malformed JSON"), (b"[]", "expected a JSON object, got array"),
                         (None, "record has no value"), (b'"x"', "expected a JSON object")]:
        with pytest.raises(RecordError, match=message) as err:
            ORDER.decode(raw)
        assert err.value.field is None


def test_unknown_fields_are_kept_and_absent_optionals_are_none():
    decoded = ORDER.decode(orjson.dumps({**VALID_ORDER, "x_new_field": 1}))
    assert decoded["x_new_field"] == 1 and decoded["ip"] is None


orders = st.fixed_dictionaries({
    "order_id": st.text(min_size=1, max_size=20), "account_id": st.text(min_size=1, max_size=20),
    "ticker": st.text(min_size=1, max_size=10), "side": st.sampled_from(["buy", "sell"]),
    "qty": st.integers(1, 10**9), "price": st.none() | st.floats(0.01, 1e7),
    "margin": st.booleans(), "session_id": st.none() | st.text(min_size=1, max_size=30),
    "ts": st.integers(946_684_800_000, 4_102_444_800_000),
})


@settings(max_examples=200, deadline=None)
@given(orders)
def test_any_valid_order_round_trips_through_the_codec(order):
    decoded = ORDER.decode(orjson.dumps(order))
    assert {k: decoded[k] for k in order} == order


@settings(max_examples=200, deadline=None)
@given(orders, st.sampled_from(sorted(f.name for f in ORDER.fields if f.required)))
def test_dropping_any_required_field_names_it(order, name):
    del order[name]
    with pytest.raises(RecordError) as err:
        ORDER.validate(order)
    assert err.value.field == name and "required field is missing" in str(err.value)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_anything_but_record_error(raw):
    for schema in SCHEMAS.values():
        try:
            schema.decode(raw)
        except RecordError:
            pass


def test_trade_schema_accepts_a_print():
    assert TRADE.validate({"ticker": "7203", "price": 2500.5, "qty": 100,
                           "ts": 1_760_000_000_000})["qty"] == 100
