"""The KRaft cluster id handed to Kafka's storage tool (``tradeguard/broker/apache_kafka.py``).

CI once lost a whole run to an id that began with "-": the storage tool's argument parser read it
as an option and every Apache Kafka fixture of that session failed to start.
"""
import base64

from hypothesis import given, strategies as st

from tradeguard.broker.apache_kafka import _cluster_id


def _decode(cluster_id: str) -> bytes:
    return base64.urlsafe_b64decode(cluster_id + "==")


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8))
def test_an_id_never_starts_with_a_dash_and_is_sixteen_bytes(draws):
    # The last draw is made safe so that the generator always ends; earlier draws may be unsafe.
    draws[-1] = b"\x00" + draws[-1][1:]
    source = iter(draws)
    cluster_id = _cluster_id(lambda n: next(source))
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
    assert len(_decode(cluster_id)) == 16


def test_a_draw_that_would_start_with_a_dash_is_drawn_again():
    dash = b"\xf8" + bytes(15)  # 0b111110.. encodes to "-" in URL-safe base64
    assert base64.urlsafe_b64encode(dash).decode().startswith("-")
    safe = bytes(16)
    draws = iter([dash, dash, safe])
    assert _cluster_id(lambda n: next(draws)) == base64.urlsafe_b64encode(safe).decode().rstrip("=")


def test_real_ids_differ_and_are_safe():
    ids = [_cluster_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert not any(i.startswith("-") for i in ids)
