"""Access control enforced by Apache Kafka: each principal can do what it needs and nothing else.

The broker (conftest.py) runs the StandardAuthorizer with ``allow.everyone.if.no.acl.found=
false``; the ACLs on it are ``streams/principals.py`` applied by ``tradeguard.kafka.acls``.
What each principal *needs* is written down again here, independently, from what each
component does: comparing the broker's real behaviour with this table is what makes a
loosened (or tightened) ACL in streams/principals.py fail a test.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.principals import PRINCIPALS
from streams.topics import TOPICS
from tradeguard.kafka import clients as kafka

pytestmark = pytest.mark.broker

ALL = tuple(t.name for t in TOPICS)
CONTROLS = ("controls.tickers", "controls.accounts")

#: principal -> (topics it must read, topics it must write); anything else must be refused.
NEEDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # The worker consumes its inputs and the control/state topics it also writes (restore).
    # It reads its own steps (engine.steps, provenance) and dead letters back to restore.
    "tradeguard": (
        frozenset({"orders", "auth.events", "market.trades", "feedback", "tickers.flow",
                   "controls.tickers", "controls.accounts", "tickers.profile", "state.snapshots",
                   "reference.tickers", "engine.steps", "deadletter"}),
        frozenset({"decisions", "decisions.shadow", "tickers.flow", "controls.tickers",
                   "controls.accounts", "tickers.profile", "deadletter", "state.snapshots",
                   "engine.steps"})),
    # A gateway sends orders and logins; it reads decisions and the controls it enforces.
    "tradeguard-gateway": (frozenset({"decisions", *CONTROLS}),
                           frozenset({"orders", "auth.events"})),
    "tradeguard-market-data": (frozenset(), frozenset({"market.trades", "reference.tickers"})),
    # The console watches the flow, releases/freezes, labels and keeps the audit trail.
    "tradeguard-console": (
        frozenset({*CONTROLS, "audit", "decisions", "orders", "auth.events", "market.trades",
                   "feedback"}),
        frozenset({*CONTROLS, "audit", "feedback"})),
    "tradeguard-labels": (frozenset(), frozenset({"feedback"})),
    "tradeguard-operator": (frozenset(CONTROLS), frozenset(CONTROLS)),
}

#: The issue's explicit refusals, asserted by name as well as through the table.
MUST_NOT_WRITE = {
    "tradeguard-gateway": {*CONTROLS, "decisions", "audit"},
    "tradeguard-console": {"decisions"},
    "tradeguard": {"audit"},
}


def writable(settings, topics) -> set[str]:
    """The topics a produce to succeeds on; a refusal must be an authorisation error."""
    outcome: dict[str, KafkaError | None] = {}

    def report(err, msg):
        outcome[msg.topic()] = err

    # Not idempotent: a principal's idempotent producer needs no extra right on Kafka >= 3,
    # but one refused topic would fail the whole idempotent session's other sends.
    producer = kafka.producer(settings, **{"enable.idempotence": False, "acks": "all",
                                           "message.timeout.ms": 20000, "retries": 0})
    for name in topics:
        producer.produce(settings.topic(name), key=b"acl-probe", value=b"{}",
                         on_delivery=report)
    assert producer.flush(30) == 0, "deliveries outstanding after 30 s"
    unexpected = {t: e for t, e in outcome.items()
                  if e is not None and e.code() != KafkaError.TOPIC_AUTHORIZATION_FAILED}
    assert not unexpected, f"produce failed for a reason other than authorisation: {unexpected}"
    return {t.removeprefix(settings.topic_prefix) for t, e in outcome.items() if e is None}


def readable(settings, topics, timeout_s: float = 30.0) -> set[str]:
    """The topics a fetch from the beginning succeeds on (a record or the end of partition 0);
    a refusal must be an authorisation error naming the topic."""
    consumer = kafka.reader(settings, "acl-probe", **{"enable.partition.eof": True})
    pending = {settings.topic(n) for n in topics}
    allowed, denied, other = set(), set(), []
    try:
        # A topic it may not even describe is refused in metadata; librdkafka then never
        # fetches it (and reports nothing per partition): that refusal is read here.
        # (Asked topic by topic: a listing of all topics just leaves such a topic out.)
        for name in pending:
            err = consumer.list_topics(name, timeout=10).topics[name].error
            if err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                denied.add(name)
        pending -= denied
        consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None or err.code() == KafkaError._PARTITION_EOF:
                allowed.add(msg.topic())
            elif err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and msg.topic():
                denied.add(msg.topic())
            else:
                other.append((msg.topic(), err))
            pending -= allowed | denied
    finally:
        consumer.close()
    assert not pending, f"no answer in {timeout_s}s for {sorted(pending)}; other errors: {other}"
    return {t.removeprefix(settings.topic_prefix) for t in allowed}


def test_the_needs_table_names_every_principal():
    assert set(NEEDS) == {p.name for p in PRINCIPALS}


@pytest.mark.parametrize("principal", sorted(NEEDS))
def test_each_principal_writes_exactly_what_it_needs(secured, principal):
    got = writable(secured.settings(principal), ALL)
    assert got == NEEDS[principal][1], (
        f"{principal}: allowed to write beyond its needs {sorted(got - NEEDS[principal][1])}, "
        f"refused what it needs {sorted(NEEDS[principal][1] - got)}")
    assert not got & MUST_NOT_WRITE.get(principal, set())


@pytest.mark.parametrize("principal", sorted(NEEDS))
def test_each_principal_reads_exactly_what_it_needs(secured, principal):
    got = readable(secured.settings(principal), ALL)
    assert got == NEEDS[principal][0], (
        f"{principal}: allowed to read beyond its needs {sorted(got - NEEDS[principal][0])}, "
        f"refused what it needs {sorted(NEEDS[principal][0] - got)}")


def test_only_the_engine_commits_in_the_engines_group(secured):
    """Consumer groups: the engine commits in ``tradeguard*``; a gateway cannot join it."""
    for user, allowed in (("tradeguard", True), ("tradeguard-gateway", False)):
        settings = secured.settings(user)
        consumer = kafka.group_consumer(settings, "tradeguard-acl-probe")
        try:
            tp = TopicPartition(settings.topic("orders"), 0, 0)
            deadline = time.monotonic() + (30 if allowed else 10)
            while True:
                try:
                    consumer.commit(offsets=[tp], asynchronous=False)
                    committed = True
                    break
                except Exception as exc:  # noqa: BLE001 - the error code is checked below
                    code = exc.args[0].code()
                    # The coordinator is found first (FindCoordinator needs no ACL): wait.
                    # A principal without Describe on the group is refused the coordinator
                    # lookup, which librdkafka reports as waiting for one, until the deadline.
                    waiting = code in (KafkaError._WAIT_COORD, KafkaError.COORDINATOR_NOT_AVAILABLE,
                                       KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
                    if waiting and time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    assert waiting or code == KafkaError.GROUP_AUTHORIZATION_FAILED, exc
                    committed = False
                    break
        finally:
            consumer.close()
        assert committed is allowed, user


def _connect(conf: dict, timeout_s: float = 10.0) -> tuple[bool, list[KafkaError]]:
    """Whether a metadata request gets an answer with brokers in it, and the errors seen."""
    errors: list[KafkaError] = []
    client = AdminClient({**conf, "log_level": 0, "error_cb": errors.append})
    try:
        ok = bool(client.list_topics(timeout=timeout_s).brokers)
    except Exception:  # noqa: BLE001 - a refused client times out or reports via error_cb
        ok = False
    client.poll(1)  # error_cb is served by poll
    return ok, errors


def test_the_right_credentials_and_ca_connect(secured):
    ok, errors = _connect(secured.settings("tradeguard-gateway").kafka_client_config())
    assert ok, errors


def test_a_wrong_password_is_refused(secured):
    ok, errors = _connect(secured.settings("tradeguard-gateway", password="not-the-password")
                          .kafka_client_config())
    assert not ok
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_an_unknown_user_is_refused(secured):
    ok, errors = _connect(secured.settings("mallory", password=secured.passwords["tradeguard"])
                          .kafka_client_config())
    assert not ok
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


@pytest.mark.parametrize("protocol", ["SSL", "PLAINTEXT"])
def test_an_unauthenticated_client_is_refused(secured, protocol):
    """TLS without SASL, or no TLS at all: no listener of this broker answers either."""
    conf = secured.settings("tradeguard-gateway", security_protocol=protocol).kafka_client_config()
    ok, errors = _connect(conf, timeout_s=6)
    assert not ok, f"{protocol} client got metadata"


def test_a_client_that_does_not_trust_the_ca_is_refused(secured):
    conf = secured.settings("tradeguard-gateway",
                            ssl_cafile=str(secured.pki / "impostor.pem")).kafka_client_config()
    ok, errors = _connect(conf)
    assert not ok
    assert any(e.code() == KafkaError._SSL for e in errors), errors
