"""Times and durations as people type them: parsed exactly, refused with the option named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.records import TS_MAX, TS_MIN
from tradeguard.replay.window import (ReplayWindow, WindowError, format_ms, parse_duration,
                                      parse_instant)

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


@given(st.integers(TS_MIN, TS_MAX))
def test_an_instant_survives_formatting_and_parsing(ms):
    assert parse_instant(format_ms(ms)) == ms
    assert parse_instant(str(ms)) == ms


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))
def test_a_duration_is_the_sum_of_its_parts(h, m, s, ms):
    text = f"{h}h{m}m{s}s{ms}ms"
    assert parse_duration(text) == ((h * 60 + m) * 60 + s) * 1000 + ms


def test_offsets_and_utc():
    assert parse_instant("2025-04-16T09:00:00+09:00") == parse_instant("2025-04-16T00:00:00Z") \
        == parse_instant("2025-04-16T00:00:00") == 1_744_761_600_000


@pytest.mark.parametrize("text, option, words", [
    ("yesterday", "--from", "neither an ISO-8601 time"),
    ("1744761600", "--to", "epoch milliseconds, not seconds?"),
])
def test_a_bad_instant_names_the_option(text, option, words):
    with pytest.raises(WindowError) as err:
        parse_instant(text, option)
    assert option in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("text", ["1 hour", "h", "-5m", "5", "1h x"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(WindowError, match="--lead-in"):
        parse_duration(text)


def test_the_window_knows_its_phases():
    w = ReplayWindow.parse("1744761600000", "1744761900000", "10m", "1m")
    assert w.warmup_from_ms == 1_744_761_000_000 and w.read_until_ms == 1_744_761_960_000
    assert w.in_range(1_744_761_600_000) and not w.in_range(1_744_761_900_000)
    assert w.describe()["lead_in"] == "600s"
    assert ReplayWindow.parse("1744761600000", "1744761900000", "ALL").lead_in_ms is None
