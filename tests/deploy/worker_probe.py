"""Helpers for probing a real worker: HTTP views, Prometheus text, committed offsets."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, TopicPartition

from tradeguard.runtime.settings import Settings

T0 = 1_760_000_000_000

_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(settings: Settings, path: str, timeout_s: float = 5.0) -> tuple[int | None, str]:
    """(status, body) of GET on the worker's web port; (None, error) when nothing answers."""
    url = f"http://127.0.0.1:{settings.web_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, urllib.error.URLError) as e:
        return None, repr(e)


def get_json(settings: Settings, path: str) -> tuple[int | None, dict | None]:
    status, body = get(settings, path)
    return status, (json.loads(body) if status is not None else None)


def wait_ready(settings: Settings, worker, timeout_s: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = get_json(settings, "/readyz")
        if status == 200:
            return body
        assert worker.alive, worker.log_tail()
        time.sleep(0.1)
    raise AssertionError(f"worker not ready in {timeout_s}s: {body}\n{worker.log_tail()}")


def partitions_held(settings: Settings) -> int | None:
    """The partitions a worker says it holds; None while its web port does not answer (a
    worker rejoining its group after a refused commit is busy for a moment)."""
    _, body = get_json(settings, "/readyz")
    return None if body is None else body["partitions"]


def wait_split(pairs: list[tuple[Settings, object]], each: int, timeout_s: float = 120.0) -> None:
    """Wait until every (settings, worker) is ready with ``each`` partitions (a second worker's
    join rebalances the group, so the first one's count changes on the way)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = []
        for settings, worker in pairs:
            wait_ready(settings, worker)
            counts.append(partitions_held(settings))
        if counts == [each] * len(pairs):
            return
        assert time.monotonic() < deadline, f"partitions per worker {counts}, wanted {each} each"
        time.sleep(0.5)


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of a Prometheus text exposition; asserts the format as it goes."""
    typed: dict[str, str] = {}
    samples: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            typed[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
        assert family in typed, f"{name} has no TYPE line"
        labels = frozenset(_LABEL.findall(m["labels"] or ""))
        key = (name, labels)
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(m["value"])
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def scrape(settings: Settings) -> dict:
    status, body = get(settings, "/metrics")
    assert status == 200, body
    return parse_exposition(body)


def order(i: int, account: str, ticker: str = "7203", side: str = "buy") -> dict:
    return {"order_id": f"o-{i}", "account_id": account, "ticker": ticker, "side": side,
            "qty": 100, "price": 2500.0, "margin": False, "session_id": f"s-{account}",
            "ts": int(time.time() * 1000)}


def login(account: str) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0",
            "country": "JP", "asn": 2516, "ts": T0}


def committed_offsets(settings: Settings, name: str) -> dict[int, int]:
    """partition -> offset the engine's consumer group committed for registry topic ``name``."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": settings.app_id,
                         "enable.auto.commit": False, "log_level": 3})
    try:
        tps = [TopicPartition(settings.topic(name), p) for p in range(settings.partitions)]
        return {tp.partition: max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def log_ends(offsets: dict[tuple[int, int], str], partitions: int) -> dict[int, int]:
    """partition -> offset after the last record, from the records themselves.

    Not from ListOffsets: the embedded broker (Tansu) answers it with the base
    offset of the last batch, short of the true end.
    """
    ends = dict.fromkeys(range(partitions), 0)
    for p, off in offsets:
        ends[p] = max(ends[p], off + 1)
    return ends


def read_field(settings: Settings, name: str, field: str) -> dict[tuple[int, int], str]:
    """(partition, offset) -> ``field`` of each record now in registry topic ``name``."""
    consumer = Consumer({**settings.kafka_client_config(),
                         "group.id": f"tradeguard-probe-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "log_level": 3})
    topic = settings.topic(name)
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
        out: dict[tuple[int, int], str] = {}
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3.0:  # until nothing more arrives for 3 s
            for msg in consumer.consume(5000, 0.5):
                if not msg.error():
                    out[(msg.partition(), msg.offset())] = json.loads(msg.value())[field]
                    idle_since = time.monotonic()
        return out
    finally:
        consumer.close()
