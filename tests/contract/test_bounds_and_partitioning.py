"""Plausible bounds (streams/bounds.py) and the per-record partitioning check
(streams/partitioning.py), each held to a plain twin on random inputs."""

from __future__ import annotations

import math
import zlib

import orjson
import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, strategies as st

from streams.bounds import BoundsError, Limits, implausible
from streams.partitioning import belongs, home_partition, misplaced
from streams.records import ORDER, TRADE
from streams.topics import partition_for
from streams.wire import BatchDecoder
from tradeguard.runtime.metrics import deadletter_reason
from tradeguard.runtime.settings import Settings, SettingsError

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

LIMITS = Limits(max_order_qty=1_000, max_price=10_000.0, max_order_notional=1_000_000.0,
                max_trade_qty=5_000, max_holdings_value=1e9)


def order(**kw) -> dict:
    return {"order_id": "o", "account_id": "a", "ticker": "7203", "side": "buy", "qty": 100,
            "price": 2500.0, "margin": False, "session_id": None, "ts": 1744761600000, **kw}


def naive_order_fields(o: dict, lim: Limits) -> str | None:
    """The twin: which field (if any) is beyond the limits, in the order they are checked."""
    if o["qty"] > lim.max_order_qty:
        return "qty"
    if o["price"] is not None and o["price"] > lim.max_price:
        return "price"
    if o["price"] is not None and o["qty"] * o["price"] > lim.max_order_notional:
        return "notional"
    if o.get("holdings_value") is not None and o["holdings_value"] > lim.max_holdings_value:
        return "holdings_value"
    return None


orders = st.builds(lambda q, p, h: order(qty=q, price=p, holdings_value=h),
                   st.integers(1, 3_000), st.none() | st.floats(0.1, 30_000.0),
                   st.none() | st.floats(0.0, 3e9))


@given(st.lists(orders, max_size=30))
def test_orders_beyond_the_limits_are_named_as_the_twin_names_them(batch):
    records, bad = BatchDecoder(ORDER).decode_many([orjson.dumps(o) for o in batch])
    assert not bad
    found = {i: e.field for i, e in implausible("orders", records, LIMITS)}
    expected = {i: f for i, o in enumerate(batch) if (f := naive_order_fields(o, LIMITS))}
    assert found == expected


@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0.1, 20_000.0)), max_size=30))
def test_trades_beyond_the_limits(prints):
    values = [orjson.dumps({"ticker": "7203", "qty": q, "price": p, "ts": 1744761600000})
              for q, p in prints]
    records, _ = BatchDecoder(TRADE).decode_many(values)
    found = {i: e.field for i, e in implausible("market.trades", records, LIMITS)}
    expected = {i: ("qty" if q > LIMITS.max_trade_qty else "price")
                for i, (q, p) in enumerate(prints)
                if q > LIMITS.max_trade_qty or p > LIMITS.max_price}
    assert found == expected


def test_the_issue_s_examples_with_the_default_limits():
    records, _ = BatchDecoder(ORDER).decode_many([
        orjson.dumps(order(qty=10 ** 12)), orjson.dumps(order(price=5e9)),
        orjson.dumps(order(qty=50_000_000, price=9_000.0)), orjson.dumps(order()),
        orjson.dumps(order(price=None, qty=99_000_000))])
    errors = implausible("orders", records, Limits())
    assert [(i, e.field) for i, e in errors] == [(0, "qty"), (1, "price"), (2, "notional")]
    assert str(errors[2][1]) == ("notional: qty x price = 450000000000 yen is more than "
                                 "100000000000 (TRADEGUARD_MAX_ORDER_NOTIONAL)")
    assert all(isinstance(e, BoundsError) and deadletter_reason(e) == "implausible_value"
               for _, e in errors)
    assert implausible("auth.events", records, Limits()) == []


def test_limits_are_settings():
    s = Settings.from_env(env={"TRADEGUARD_MAX_ORDER_QTY": "500",
                               "TRADEGUARD_MAX_ORDER_NOTIONAL": "1e6"})
    assert Limits.from_settings(s) == Limits(max_order_qty=500, max_order_notional=1e6)
    with pytest.raises(SettingsError, match="TRADEGUARD_MAX_PRICE must be > 0"):
        Settings.from_env(env={"TRADEGUARD_MAX_PRICE": "0"})


keys = st.binary(min_size=1, max_size=40)


@given(keys, st.integers(1, 64))
def test_home_partition_is_kafka_s_murmur2(key, n):
    """Held to an independent implementation (aiokafka's, Java's algorithm) and the registry's."""
    assert home_partition(key, n) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % n
    if key.decode("utf-8", "ignore").encode() == key:
        assert home_partition(key, n) == partition_for(key.decode(), n)


@given(st.lists(st.none() | keys, max_size=40), st.integers(1, 16), st.data())
def test_misplaced_is_every_key_not_at_home(batch, n, data):
    p = data.draw(st.integers(0, n - 1))
    found = [i for i, _ in misplaced(batch, p, n)]
    assert found == [i for i, k in enumerate(batch)
                     if k is None or (aiokafka_murmur2(k) & 0x7FFFFFFF) % n != p]
    assert found == [i for i, k in enumerate(batch) if not belongs(k, p, n)]


def test_librdkafka_s_default_partitioner_puts_most_accounts_elsewhere():
    """consistent_random hashes with CRC32: what the engine dead-letters, and why."""
    accounts = [f"acct-{i:06d}".encode() for i in range(1000)]
    crc = [zlib.crc32(k) % 8 for k in accounts]
    off = sum(1 for k, p in zip(accounts, crc) if home_partition(k, 8) != p)
    assert off > 800  # 7 in 8 by chance
    i = next(i for i, k in enumerate(accounts) if home_partition(k, 8) != crc[i])
    (_, error), = misplaced([accounts[i]], crc[i], 8)
    assert "partitioner=murmur2_random" in str(error)
    assert deadletter_reason(error) == "wrong_partition"


# -- every bound probed one unit inside and one unit outside ------------------------------------
# A unit is a share for quantities and the smallest step a float has at the bound for prices
# and values (math.nextafter): a ``>`` made ``>=``, a limit read from the wrong field or scaled
# by ten fails one side of a pair.

UP, DOWN = (lambda x: math.nextafter(x, math.inf)), (lambda x: math.nextafter(x, -math.inf))


def _order_fields(**kw) -> list[str]:
    records, bad = BatchDecoder(ORDER).decode_many([orjson.dumps(order(**kw))])
    assert not bad
    return [e.field for _, e in implausible("orders", records, LIMITS)]


def _trade_fields(qty: int, price: float) -> list[str]:
    records, bad = BatchDecoder(TRADE).decode_many(
        [orjson.dumps({"ticker": "7203", "qty": qty, "price": price, "ts": 1744761600000})])
    assert not bad
    return [e.field for _, e in implausible("market.trades", records, LIMITS)]


@pytest.mark.parametrize("kw, field", [
    # qty: 1,000 shares at 1 yen (the notional stays far inside)
    (dict(qty=LIMITS.max_order_qty, price=1.0), None),
    (dict(qty=LIMITS.max_order_qty + 1, price=1.0), "qty"),
    (dict(qty=LIMITS.max_order_qty + 1, price=None), "qty"),  # a market order too
    # price: one share at the limit, and the next float above it
    (dict(qty=1, price=LIMITS.max_price), None),
    (dict(qty=1, price=UP(LIMITS.max_price)), "price"),
    # notional: 200 shares at 5,000 yen is the limit; a sen more per share, or a share more, not
    (dict(qty=200, price=LIMITS.max_order_notional / 200), None),
    (dict(qty=200, price=LIMITS.max_order_notional / 200 + 0.01), "notional"),
    (dict(qty=201, price=LIMITS.max_order_notional / 200), "notional"),
    # holdings value
    (dict(holdings_value=LIMITS.max_holdings_value), None),
    (dict(holdings_value=UP(LIMITS.max_holdings_value)), "holdings_value"),
    (dict(holdings_value=None), None),
])
def test_each_order_bound_one_unit_inside_and_one_outside(kw, field):
    assert _order_fields(**kw) == ([field] if field else [])


@pytest.mark.parametrize("qty, price, field", [
    (LIMITS.max_trade_qty, LIMITS.max_price, None),
    (LIMITS.max_trade_qty + 1, 1.0, "qty"),
    (1, UP(LIMITS.max_price), "price"),
    (1, DOWN(LIMITS.max_price), None),
])
def test_each_trade_bound_one_unit_inside_and_one_outside(qty, price, field):
    assert _trade_fields(qty, price) == ([field] if field else [])


def test_the_trade_quantity_bound_is_not_the_order_s():
    """The two quantity limits differ (5,000 for prints, 1,000 for orders): a check that
    read one for the other passes or refuses 1,001 to 5,000 shares on the wrong side."""
    assert _trade_fields(LIMITS.max_order_qty + 1, 1.0) == []
    assert _order_fields(qty=LIMITS.max_order_qty + 1, price=1.0) == ["qty"]


@pytest.mark.parametrize("field, kw, setting, limit, got", [
    ("qty", dict(qty=1_001, price=1.0), "MAX_ORDER_QTY", "1000 shares", "1001"),
    ("price", dict(qty=1, price=10_000.5), "MAX_PRICE", "10000 yen", "10000.5"),
    ("holdings_value", dict(holdings_value=2e9), "MAX_HOLDINGS_VALUE", "1000000000 yen",
     "2000000000"),
])
def test_the_message_names_the_limit_the_setting_and_the_value(field, kw, setting, limit, got):
    records, _ = BatchDecoder(ORDER).decode_many([orjson.dumps(order(**kw))])
    ((i, error),) = implausible("orders", records, LIMITS)
    assert (i, error.field) == (0, field)
    assert str(error) == f"{field}: must be <= {limit} (TRADEGUARD_{setting}), got {got}"


def test_a_trade_s_message_names_its_own_setting():
    records, _ = BatchDecoder(TRADE).decode_many(
        [orjson.dumps({"ticker": "7203", "qty": 5_001, "price": 1.0, "ts": 1744761600000})])
    ((_, error),) = implausible("market.trades", records, LIMITS)
    assert str(error) == "qty: must be <= 5000 shares (TRADEGUARD_MAX_TRADE_QTY), got 5001"


def test_limits_default_to_the_contract_s_plausible_values_and_read_every_setting():
    from streams import records as contract
    assert Limits() == Limits(contract.PLAUSIBLE_ORDER_QTY, contract.PLAUSIBLE_PRICE,
                              contract.PLAUSIBLE_ORDER_NOTIONAL, contract.PLAUSIBLE_TRADE_QTY,
                              contract.PLAUSIBLE_HOLDINGS_VALUE)
    env = {"TRADEGUARD_MAX_ORDER_QTY": "11", "TRADEGUARD_MAX_PRICE": "12",
           "TRADEGUARD_MAX_ORDER_NOTIONAL": "13", "TRADEGUARD_MAX_TRADE_QTY": "14",
           "TRADEGUARD_MAX_HOLDINGS_VALUE": "15"}
    assert Limits.from_settings(Settings.from_env(env=env)) == Limits(11, 12.0, 13.0, 14, 15.0)


def test_every_record_beyond_a_bound_is_reported_not_only_the_first():
    batch = [order(qty=1_001, price=1.0), order(), order(qty=1_002, price=1.0)]
    records, _ = BatchDecoder(ORDER).decode_many([orjson.dumps(o) for o in batch])
    assert [(i, e.field) for i, e in implausible("orders", records, LIMITS)] == [
        (0, "qty"), (2, "qty")]


@pytest.mark.parametrize("number, text", [(1e21, "1e+21"), (2.5, "2.5"), (3.0, "3"),
                                          (-4.0, "-4"), (1e20, "100000000000000000000")])
def test_numbers_in_messages_are_written_as_people_read_them(number, text):
    from streams.bounds import _n
    assert _n(number) == text


# -- the partitioning check's message ---------------------------------------------------------

def test_a_misplaced_key_is_named_with_where_it_hashes_and_where_it_sits():
    key = b"acct-000042"
    home = home_partition(key, 8)
    elsewhere = (home + 1) % 8
    ((i, error),) = misplaced([key], elsewhere, 8)
    assert i == 0 and deadletter_reason(error) == "wrong_partition"
    assert str(error).startswith(
        f"key 'acct-000042' hashes to partition {home} of 8 under murmur2 but sits on "
        f"partition {elsewhere}: the producer partitions another way; produce with murmur2")
    assert misplaced([key], home, 8) == []
    assert belongs(key, home, 8) and not belongs(key, elsewhere, 8) and not belongs(None, home, 8)
