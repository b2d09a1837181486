"""The control keys' own rules (streams/signing.py ``ControlKeys``): the length bound probed on
both sides, the bad key named by its place in the file, rotation by key id. (Forgeries are
tests/contract/test_signing.py's.)"""

from __future__ import annotations

import pytest

from streams.signing import ControlKeys, key_id

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

GOOD = b"k" * 16  # the shortest key accepted


def test_a_key_of_16_bytes_is_accepted_and_one_of_15_refused():
    assert ControlKeys((GOOD,)).keys == (GOOD,)
    with pytest.raises(ValueError, match=r"control key #1 is shorter than 16 bytes"):
        ControlKeys((b"k" * 15,))


def test_the_short_key_is_named_by_its_place_in_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"control key #3 is shorter than 16 bytes"):
        ControlKeys((GOOD, b"j" * 40, b"short"))
    path = tmp_path / "keys"
    path.write_text(f"# rotated in 2026\n{'a' * 32}\n\n{'b' * 15}\n")
    with pytest.raises(ValueError, match=rf"^{path}: control key #2 is shorter than 16 bytes"):
        ControlKeys.from_file(path)


def test_no_keys_and_an_unreadable_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one control key is needed"):
        ControlKeys.from_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="cannot read the control key file"):
        ControlKeys.from_file(tmp_path / "absent")


def test_the_first_key_signs_and_every_key_is_found_by_its_id():
    old, new = b"o" * 32, b"n" * 32
    keys = ControlKeys.from_text(f"{new.decode()}\n# the previous key, still verifying\n"
                                 f"{old.decode()}\n")
    assert keys.keys == (new, old) and keys.signing_id == key_id(new) != key_id(old)
    assert keys.by_id(key_id(old)) == old and keys.by_id(key_id(new)) == new
    assert keys.by_id("00000000") is None
    assert not keys.is_development and ControlKeys.development().is_development
