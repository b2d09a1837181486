"""``tradeguard warm``: history learned into the snapshots a worker restores, before it starts."""

from __future__ import annotations

import time

import orjson
import pytest

from agents.state import SnapshotStore, reader
from agents.warm import HistoryError, read_history_file
from streams.records import PLAUSIBLE_ORDER_QTY
from streams.topics import partition_for
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.cli.main import main
from tradeguard.core import Inputs, PartitionCore, Shared, typed
from tradeguard.core.blocks import ReasonsEncoder
from tradeguard.policy.config import PolicyConfig

DAY_MS = 86_400_000
KNOWN = ("acct-w1", "acct-w2", "acct-w3")  # in the history, always from their home device


def login(account: str, ts: int, device: str = "home") -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}-{ts}",
            "ip": f"203.0.113.{10 + int(account[-1])}", "device_id": f"{device}-{account}",
            "user_agent": "Mozilla/5.0", "country": "JP", "asn": 2516, "ts": ts}


def order(order_id: str, session: dict, ts: int) -> dict:
    return {"order_id": order_id, "account_id": session["account_id"], "ticker": "7203",
            "side": "buy", "qty": 100, "price": 2500.0, "margin": False,
            "session_id": session["session_id"], "ts": ts}


def history(now: int) -> list[tuple[str, dict]]:
    """Three days of trades in 7203 and of the known accounts logging in at home to buy it."""
    out: list[tuple[str, dict]] = []
    for day in (3, 2, 1):
        t = now - day * DAY_MS
        out += [("market.trades", {"ticker": "7203", "price": 2500.0, "qty": 1000,
                                   "ts": t + k * 60_000}) for k in range(30)]
        for account in KNOWN:
            session = login(account, t + 1_000)
            out += [("auth.events", session), ("orders", order(f"h-{account}-{day}", session,
                                                               t + 2_000))]
    return sorted(out, key=lambda item: item[1]["ts"])


def write_jsonl(path, items) -> None:
    path.write_bytes(b"".join(orjson.dumps({"topic": t, "record": r}) + b"\n" for t, r in items))


def reasons(decision: dict) -> set[str]:
    return {r["code"] for r in decision["reasons"]}


@pytest.fixture
def cli_env(engine_settings, tmp_path, monkeypatch):
    """The CLI reads its settings from the environment: the test's topic set, as a worker's."""
    for name, value in WorkerProcess(engine_settings, tmp_path / "unused.log").env().items():
        monkeypatch.setenv(name, value)
    return engine_settings


@pytest.mark.broker
def test_warm_from_file_makes_the_history_known_to_the_first_worker(cli_env, start_worker,
                                                                    tmp_path, capsys):
    settings = cli_env
    now = int(time.time() * 1000) - 60_000  # within the worker's bound on event lead
    path = tmp_path / "history.jsonl"
    write_jsonl(path, history(now))
    # On the topic before the warm: covered by it (the snapshot starts at the topics' ends).
    gateway = GatewayProducer(settings)
    early = login("acct-w1", now - 30_000)
    gateway.send("auth.events", early)
    gateway.send("orders", order("before-warm", early, now - 29_000))
    gateway.flush()

    assert main(["warm", "--from-file", str(path)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "orders                   9 records learned" in printed, printed
    # A second warm would replace what the first wrote: refused without --force.
    assert main(["warm", "--from-file", str(path)]) == 2
    assert "already holds snapshots of partitions [0, 1, 2, 3]" in capsys.readouterr().err

    worker = start_worker(settings)
    home = login("acct-w1", now)
    new_device = login("acct-w2", now, device="phone")
    stranger = login("acct-w9", now)  # never in the history: the control case
    # The logins are on the broker before any order is sent: a login and an order sent
    # together may reach the worker in different fetches, and an order decided before its
    # login has no session to compare (what CI saw once: "new-device" with no new_device).
    for session in (home, new_device, stranger):
        gateway.send("auth.events", session)
    gateway.flush()
    for session, name in ((home, "home"), (new_device, "new-device"), (stranger, "stranger")):
        gateway.send("orders", order(name, session, now + 2_000))
    gateway.flush()
    with TopicReader(settings, "decisions") as topic:
        records = topic.read_until(lambda rs: len(rs) >= 3, timeout_s=60)
        records += topic.poll(timeout_s=1.0)
    decided = {d["order_id"]: d for _, d in records}
    assert worker.alive, worker.log_tail()
    assert set(decided) == {"home", "new-device", "stranger"}, (sorted(decided),
                                                               worker.log_tail())
    # Known from the history: nothing about its home device is new, and it is not unknown.
    assert not reasons(decided["home"]) & {"unknown_account", "new_device", "new_ip"}, \
        decided["home"]
    assert "new_device" in reasons(decided["new-device"]), decided["new-device"]
    assert "unknown_account" not in reasons(decided["new-device"])
    # Without history an account is unknown, exactly what every account was before the warm.
    assert "unknown_account" in reasons(decided["stranger"]), decided["stranger"]
    # The ticker profile the history's trades gave reached the worker (tickers.profile):
    # 7203 is valued by its ~75M yen a day, not as a ticker with no history.
    thin = {r["code"]: r["value"] for r in decided["home"]["reasons"]}.get(
        "thin_ticker_notional_x_adv", 0.0)
    assert thin < 0.01, decided["home"]


@pytest.mark.broker
def test_warm_from_kafka_reads_the_window_and_stops_where_it_read(cli_env, tmp_path, capsys):
    settings = cli_env
    now = int(time.time() * 1000)
    gateway = GatewayProducer(settings)
    stale = login("acct-w1", now - 5 * DAY_MS)  # older than the window: left out
    gateway.send("auth.events", stale)
    for name, record in history(now):
        gateway.send(name, record)
    gateway.send("orders", b'{"order_id": "broken"', key="acct-w2")  # a worker dead-letters it
    gateway.flush()

    assert main(["warm", "--from-kafka", "--days", "4"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "left out (older_than_window): 1" in printed and "left out (contract): 1" in printed

    consumer = reader(settings)
    try:
        snapshots = SnapshotStore(settings).load(consumer, set(range(settings.partitions)))
    finally:
        consumer.close()
    assert sorted(snapshots) == [0, 1, 2, 3]
    # Each topic's offsets: just past its records (what the worker must not decide again).
    sent: dict[tuple[str, int], int] = {}
    for name, record in [("auth.events", stale), *history(now)]:
        key = (name, partition_for(record[{"auth.events": "account_id", "orders": "account_id",
                                           "market.trades": "ticker"}[name]], 4))
        sent[key] = sent.get(key, 0) + 1
    broken = ("orders", partition_for("acct-w2", 4))
    sent[broken] += 1
    for p, (manifest, _) in snapshots.items():
        for name in ("auth.events", "orders", "market.trades", "feedback", "tickers.flow"):
            assert manifest["offsets"][name] == sent.get((name, p), 0), (name, p, manifest)
    # The restored cores know the known accounts' home devices.
    shared = Shared()
    cores = {p: PartitionCore.from_bytes(blob, shared) for p, (_, blob) in snapshots.items()}
    for account in KNOWN:
        session = login(account, now + 1_000)
        inputs = Inputs()
        inputs.add("auth.events", [typed("auth.events", session)])
        inputs.add("orders", [typed("orders", order(f"live-{account}", session, now + 2_000))])
        out = cores[partition_for(account, 4)].process(inputs, PolicyConfig.defaults())
        codes = {r["code"] for r in ReasonsEncoder.decode(out.decisions.reasons[0])}
        assert not codes & {"unknown_account", "new_device"}, (account, codes)


def test_a_history_file_with_bad_lines_is_refused_naming_each(tmp_path):
    now = 1_790_000_000_000
    session = login("acct-w1", now)
    good = order("o-1", session, now + 1)
    lines = [
        orjson.dumps({"topic": "auth.events", "record": session}),
        b'{"topic": "orders", "record": {"order_id": ',                           # 2: not JSON
        orjson.dumps({"topic": "order", "record": good}),                         # 3: unknown
        orjson.dumps({"topic": "tickers.flow", "record": good}),                  # 4: derived
        orjson.dumps({"topic": "orders", "record": {k: v for k, v in good.items()
                                                    if k != "ticker"}}),          # 5: no ticker
        b"",
        orjson.dumps({"topic": "orders", "record": {**good,
                                                    "qty": PLAUSIBLE_ORDER_QTY + 1}}),  # 7
        orjson.dumps({"topic": "decisions", "record": good}),                     # 8: an output
        orjson.dumps({"record": good}),                                           # 9: no topic
        orjson.dumps({"topic": "orders", "record": good}),
    ]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(HistoryError) as caught:
        read_history_file(path)
    message = str(caught.value)
    assert "7 of 9 records refused, nothing warmed" in message, message
    for expected in ("line 2: not JSON", "line 3: unknown topic 'order'",
                     "line 4: topic 'tickers.flow' is derived by the engine",
                     "line 5: orders: ", "ticker", "line 7: orders: qty",
                     "line 8: topic 'decisions' is not history",
                     'line 9: expected {"topic": NAME, "record": {...}}'):
        assert expected in message, (expected, message)
    assert "line 1:" not in message and "line 10:" not in message

    # The good lines alone are read, in event time (the order after its login).
    path.write_bytes(lines[9] + b"\n" + lines[0] + b"\n")
    assert [name for name, _ in read_history_file(path)] == ["auth.events", "orders"]
    path.write_bytes(b"\n")
    with pytest.raises(HistoryError, match="no records"):
        read_history_file(path)


@pytest.mark.broker
def test_warm_refuses_once_the_workers_group_has_committed(cli_env, tmp_path, capsys):
    from confluent_kafka import Consumer, TopicPartition

    settings = cli_env
    group = Consumer({**settings.kafka_client_config(), "group.id": settings.app_id,
                      "enable.auto.commit": False, "log_level": 3})
    try:  # what a worker's commit leaves behind
        group.commit(offsets=[TopicPartition(settings.topic("orders"), 1, 5)],
                     asynchronous=False)
    finally:
        group.close()
    path = tmp_path / "history.jsonl"
    write_jsonl(path, history(int(time.time() * 1000)))
    assert main(["warm", "--from-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"consumer group {settings.app_id!r} has committed offsets" in err, err
    assert main(["warm", "--from-kafka"]) == 2
    assert "--from-kafka needs --days N" in capsys.readouterr().err
