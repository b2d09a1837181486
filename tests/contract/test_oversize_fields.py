"""Client strings on the input topics are bounded: an outsider who can write ``orders`` or
``auth.events`` cannot put megabytes in one field (8 December: a 900 KB user agent on an
``mfa_challenge_failed`` was decoded and accepted; the engine keeps devices, networks and
sessions in its state). One unit over the bound is refused with the field named; the bound
itself is accepted."""

from __future__ import annotations

import orjson
import pytest

from streams.records import ORDER, AUTH_EVENT
from streams.schema import RecordError
from streams.wire import BatchDecoder

pytestmark = pytest.mark.quick

AUTH = {"account_id": "acct-1", "event": "login_success", "session_id": "s-1", "ip": "198.51.100.7",
        "device_id": "dev-1", "user_agent": "Mozilla/5.0", "country": "JP", "asn": 2516,
        "ts": 1_760_000_000_000}
BOUNDS = {"ip": 64, "device_id": 256, "session_id": 256, "user_agent": 1024, "country": 8}


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_an_auth_event_field_one_past_its_bound_is_refused_by_name(field):
    decoder = BatchDecoder(AUTH_EVENT)
    at_bound = dict(AUTH, **{field: "x" * BOUNDS[field]})
    assert getattr(decoder.decode(orjson.dumps(at_bound)), field) == "x" * BOUNDS[field]
    with pytest.raises(RecordError) as refused:
        decoder.decode(orjson.dumps(dict(AUTH, **{field: "x" * (BOUNDS[field] + 1)})))
    assert field in str(refused.value)


@pytest.mark.parametrize("field", ["ip", "device_id", "user_agent"])
def test_an_order_field_past_its_bound_is_refused_by_name(field):
    order = {"order_id": "o-1", "account_id": "acct-1", "ticker": "7203", "side": "buy",
             "qty": 100, "price": 2500.0, "margin": False, "session_id": "s-1",
             "ts": 1_760_000_000_000, field: "x" * 900_000}
    with pytest.raises(RecordError) as refused:
        BatchDecoder(ORDER).decode(orjson.dumps(order))
    assert field in str(refused.value)
