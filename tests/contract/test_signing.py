"""Control-record signatures (streams/signing.py): what verifies, what does not, and why."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from streams.signing import (ControlKeys, SignatureError, canonical, check, key_id, sign,
                             unsigned_or_forged)

KEYS = ControlKeys((b"k" * 32,))
OTHER = ControlKeys((b"z" * 32,))

# JSON values inside RFC 8785's domain (integers exactly representable as doubles).
scalars = (st.none() | st.booleans() | st.integers(-(2 ** 53) + 1, 2 ** 53 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
records = st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "signature"),
                          values, min_size=1, max_size=8)


@given(records)
def test_a_signed_record_verifies_after_any_faithful_reserialisation(record):
    signed = sign(record, KEYS)
    check(signed, KEYS)
    # A writer or reader in another language: other key order, whitespace, escapes.
    items = list(signed.items())
    random.Random(len(items)).shuffle(items)
    text = json.dumps(dict(items), indent=2, ensure_ascii=True)
    check(orjson.loads(text), KEYS)


@given(records, st.data())
def test_any_change_to_a_signed_record_is_caught(record, data):
    signed = sign(record, KEYS)
    field = data.draw(st.sampled_from(sorted(record)))
    changed = data.draw(values.filter(lambda v: canonical({"v": v}) != canonical(
        {"v": record[field]})))
    with pytest.raises(SignatureError) as caught:
        check({**signed, field: changed}, KEYS)
    assert caught.value.kind == "mismatch" and caught.value.field == "signature"
    with pytest.raises(SignatureError):
        check({k: v for k, v in signed.items() if k != field}, KEYS)  # a field removed
    with pytest.raises(SignatureError):
        check({**signed, "\x00extra": 1}, KEYS)  # a field added


@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "signature"),
                       st.none() | st.booleans() | st.integers(-(2 ** 53) + 1, 2 ** 53 - 1)
                       | st.text(max_size=20), max_size=8))
def test_canonical_form_agrees_with_its_plain_twin_without_floats(record):
    """Without floats RFC 8785 is sorted keys, no whitespace, UTF-8 (the naive twin)."""
    twin = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # JSON sorts by UTF-16 code units, Python by code points: equal below the astral planes.
    if all(ord(c) < 0xD800 for k in record for c in k):
        assert canonical(record) == twin.encode()


def test_signature_names_its_key_and_keys_rotate():
    old, new = b"o" * 32, b"n" * 32
    signed_old = sign({"ticker": "7203", "action": "release"}, ControlKeys((old,)))
    assert signed_old["signature"].split(":")[1] == key_id(old)
    check(signed_old, ControlKeys((new, old)))  # the old key still verifies after rotation
    assert sign({"a": 1}, ControlKeys((new, old)))["signature"].split(":")[1] == key_id(new)
    with pytest.raises(SignatureError, match="does not hold") as caught:
        check(signed_old, ControlKeys((new,)))  # retired
    assert caught.value.kind == "unknown_key"


@pytest.mark.parametrize("signature, kind", [
    (None, "missing"), ("abc", "malformed"), (123, "malformed"), ("v9:00000000:00", "malformed"),
])
def test_malformed_signatures_are_named(signature, kind):
    record = {"ticker": "7203", "action": "halt_buys", "signature": signature}
    with pytest.raises(SignatureError) as caught:
        check(record, KEYS)
    assert caught.value.kind == kind


def test_a_forger_with_another_key_is_refused_even_when_claiming_ours():
    forged = sign({"ticker": "7203", "action": "release"}, OTHER)
    _, _, mac = forged["signature"].split(":")
    forged["signature"] = f"v1:{key_id(KEYS.keys[0])}:{mac}"
    with pytest.raises(SignatureError, match="does not match"):
        check(forged, KEYS)


def test_raw_values_in_a_batch():
    good = orjson.dumps(sign({"ticker": "1", "action": "release"}, KEYS))
    unsigned = orjson.dumps({"ticker": "2", "action": "release"})
    other = orjson.dumps(sign({"ticker": "3", "action": "release"}, OTHER))
    refused = unsigned_or_forged([good, unsigned, None, b"\xff not json", b"[1]", other], KEYS)
    assert [(i, e.kind) for i, e in refused] == [(1, "missing"), (2, "tombstone"),
                                                 (5, "unknown_key")]


@settings(max_examples=25)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_verify_whatever_their_printed_form(x):
    signed = sign({"v": x}, KEYS)
    check(orjson.loads(orjson.dumps(signed)), KEYS)
    check(json.loads(json.dumps(signed)), KEYS)


def test_values_outside_canonical_json_are_refused_not_signed_wrongly():
    with pytest.raises(SignatureError, match="no canonical JSON"):
        sign({"v": 2 ** 60}, KEYS)


def test_key_files(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# current first\n" + "a" * 32 + "\n\n" + "b" * 32 + "\n")
    keys = ControlKeys.from_file(path)
    assert keys.keys == (b"a" * 32, b"b" * 32) and not keys.is_development
    path.write_text("short\n")
    with pytest.raises(ValueError, match="shorter than 16 bytes"):
        ControlKeys.from_file(path)
    with pytest.raises(ValueError, match="cannot read the control key file"):
        ControlKeys.from_file(tmp_path / "missing")
    with pytest.raises(ValueError, match="at least one"):
        ControlKeys.from_text("\n# nothing\n")


HALT = {"ticker": "7203", "action": "halt_buys", "reason": "3 risky accounts bought",
        "evidence": {"accounts": ["a1", "a2", "a3"], "risky_notional": 7.2e6},
        "expires_at": 1744762200000, "source": "engine", "ts": 1744761600000, "seq": 7}


# seq too: a captured record cannot be "refreshed" past the one in force by raising its seq.
@pytest.mark.parametrize("field, forged", [
    ("ticker", "6758"), ("action", "release"), ("reason", "x"), ("evidence", None),
    ("expires_at", 1844762200000), ("source", "console:mallory"), ("ts", 1744761600001),
    ("seq", 8)])
def test_every_field_of_a_real_halt_is_covered(field, forged):
    signed = sign(HALT, KEYS)
    with pytest.raises(SignatureError, match="does not match"):
        check({**signed, field: forged}, KEYS)


def test_the_key_file_setting_is_checked_at_start(tmp_path):
    from tradeguard.runtime.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="TRADEGUARD_CONTROL_KEY_FILE: cannot read"):
        Settings.from_env(env={"TRADEGUARD_CONTROL_KEY_FILE": str(tmp_path / "missing")})
    key = tmp_path / "key"
    key.write_text("c" * 32 + "\n")
    s = Settings.from_env(env={"TRADEGUARD_CONTROL_KEY_FILE": str(key)})
    assert ControlKeys.from_settings(s).keys == (b"c" * 32,)
    assert ControlKeys.from_settings(Settings.from_env(env={})).is_development
