"""Plausible bounds (streams/bounds.py) and the per-record partitioning check
(streams/partitioning.py), each held to a plain twin on random inputs."""

from __future__ import annotations

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
