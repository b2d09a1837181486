"""Ticker reference data on the wire: the instrument master's record as the engine decodes it."""

from __future__ import annotations

import orjson
import pytest

from streams.records import TICKER_REFERENCE
from streams.schema import RecordError
from streams.topics import topic
from streams.wire import BatchDecoder, to_dict

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

LISTED = {"ticker": "NASDAQ:ABCD", "market": "US", "venue": "NASDAQ", "currency": "JPY",
          "lot": 1, "listing_date": "2009-04-01", "shares_outstanding": 48_000_000,
          "reference_price": 412.0, "normal_daily_value": 2.5e8, "ts": 1_760_000_000_000}
NEW_LISTING = {**LISTED, "ticker": "4599", "market": "JP", "venue": "TSE", "lot": 100,
               "listing_date": "2025-10-09", "normal_daily_value": None}


def test_reference_records_round_trip_through_the_engine_s_decoder():
    assert topic("reference.tickers").schema is TICKER_REFERENCE
    assert topic("reference.tickers").compacted and topic("reference.tickers").key == "ticker"
    records, bad = BatchDecoder(TICKER_REFERENCE).decode_many(
        [orjson.dumps(LISTED), orjson.dumps(NEW_LISTING)])
    assert not bad
    assert [to_dict(r) for r in records] == [LISTED, NEW_LISTING]
    assert records[1].normal_daily_value is None  # a new listing: no history yet
    assert TICKER_REFERENCE.validate(NEW_LISTING) == NEW_LISTING


@pytest.mark.parametrize("mutation, message", [
    ({"currency": "USD"}, "currency: must be one of ['JPY'"),
    ({"normal_daily_value": -1.0}, "normal_daily_value: must be >= 0"),
    ({"reference_price": 0}, "reference_price: must be > 0"),
    ({"shares_outstanding": 0}, "shares_outstanding: must be > 0"),
    ({"ts": 0}, "ts: must be >= 946684800000"),
])
def test_a_bad_reference_record_names_its_field(mutation, message):
    value = orjson.dumps({**LISTED, **mutation})
    records, bad = BatchDecoder(TICKER_REFERENCE).decode_many([value])
    assert not records and bad[0][1].field == next(iter(mutation))
    with pytest.raises(RecordError, match=message.replace("[", r"\[")):
        TICKER_REFERENCE.validate({**LISTED, **mutation})


def test_a_missing_normal_daily_value_is_an_error_not_a_new_listing():
    # null says "no history yet"; leaving the field out says nothing, and is refused.
    record = {k: v for k, v in LISTED.items() if k != "normal_daily_value"}
    records, bad = BatchDecoder(TICKER_REFERENCE).decode_many([orjson.dumps(record)])
    assert not records and bad[0][1].field == "normal_daily_value"
