"""A broker paused past the worker's session: the worker takes its partitions up where it stood.

The broker is SIGSTOPped for longer than the session timeout while orders flow, then
resumed. librdkafka, without an answer from the group coordinator for a whole session,
revokes the worker's partitions as lost and joins the group again, which gives them back.
The engine (at least once) kept each lost partition's state once its outputs were
delivered: nobody committed anything since its own last commit, so it takes each one up
where it stood, with no restore (``PartitionState.resumable``), skipping what it had
decided but could not commit. Before this, every pause past the session cost a full
restore (snapshot plus a replay of the topics): 13 of the 25 s the fault suite measured
on Apache Kafka before the first decision after the broker came back.

Checked: every order decided, exactly once on Apache Kafka (at least once on the embedded
Tansu, where a run re-decided a few); every partition resumed, none restored again;
and the step records still replay exactly (the incarnation went on with its own cores).
Break: ``_revoked`` not parking the states (as before): 4 restores more, 0 resumed.
``resumable`` ignoring the acknowledged offsets: passes here (nobody else committed);
``tests/engine/test_parking.py`` forges that case.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.deploy.worker_probe import partitions_held
from tests.faults.helpers import SteadyOrders, metric, wait_until
from tradeguard.policy.config import PolicyConfig
from tradeguard.replay import provenance

pytestmark = pytest.mark.broker

SESSION_MS = 3_000


def test_a_worker_takes_its_partitions_up_where_it_stood_after_a_broker_pause(
        broker, engine_settings, start_worker):
    settings = engine_settings.with_(processing_guarantee="at_least_once",
                                     session_timeout_ms=SESSION_MS)
    _pause_and_check(broker, settings, start_worker, SESSION_MS / 1000 + 3)


def test_the_same_with_kip_848_consumer_groups(broker, engine_settings, start_worker):
    """The consumer group protocol of KIP-848 (Apache Kafka 4.0 and later; Tansu has only the
    classic one). The session is the broker's (the test broker's group.consumer.session.
    timeout.ms, 6 s); the pause outlives it and the broker's own session with its
    controller (9 s), so the node also fences itself and reloads the group coordinator on
    SIGCONT, the case that ended the consumer thread before (``tests/engine/
    test_pipe_recovers.py``). Break: ``_on_assign`` without ``_asking_again``: fails here
    in some runs only (the assignment must land while the partitions are unknown), which
    is why the unit test forges it."""
    if broker.profile != "kafka":
        pytest.skip("KIP-848 consumer groups need Apache Kafka 4.0 or later")
    settings = engine_settings.with_(processing_guarantee="at_least_once",
                                     group_protocol="consumer")
    _pause_and_check(broker, settings, start_worker, 10.0, must_lose=False)


def _pause_and_check(broker, settings, start_worker, pause_s: float,
                     must_lose: bool = True) -> None:
    """``must_lose``: the pause outlives the session, so the partitions are lost and resumed.
    A KIP-848 coordinator reloaded after the node fenced itself starts its members' session
    clocks afresh: the worker may keep its partitions through the pause (its heartbeat with
    the same member epoch is simply answered), which is better still; then nothing is
    resumed, and what is checked is that every partition is held and nothing restored."""
    if broker.process is None:
        pytest.skip("a broker someone else runs cannot be paused from here")
    worker = start_worker(settings)
    wait_until(lambda: partitions_held(settings) == settings.partitions and metric(
        settings, "tradeguard_partitions_restored_total") == settings.partitions, 120,
        "the worker holding every partition, restored", worker.log_tail)
    restored_at_start = settings.partitions

    with SteadyOrders(settings, "p") as flow:
        time.sleep(3)  # orders decided, some not committed yet when the broker stops
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            time.sleep(pause_s)  # past the session: the partitions are lost
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        if must_lose:
            wait_until(lambda: metric(settings, "tradeguard_partitions_resumed_total")
                       >= settings.partitions, 90, "every partition resumed", worker.log_tail)
        else:
            wait_until(lambda: partitions_held(settings) == settings.partitions, 90,
                       "every partition held again", worker.log_tail)
        time.sleep(2)  # orders decided after the resumption too
    seen = flow.decided()
    expected = set(flow.sent)
    assert set(seen) == expected, (len(expected - set(seen)), worker.log_tail())
    twice = {o: n for o, n in seen.items() if n > 1}
    if broker.profile == "kafka":
        assert not twice, f"{len(twice)} orders decided more than once, e.g. {list(twice)[:5]}"
    # On the embedded Tansu one CI run in four re-decided a few orders after the pause (9 of
    # ~800, stop 28; the cause is not found). At least once allows it; "nothing decided
    # twice" is asserted on Apache Kafka, CI's second stage, where it held in every run.
    log = worker.log_tail(400)
    resumed = metric(settings, "tradeguard_partitions_resumed_total")
    assert resumed >= settings.partitions if must_lose else resumed in (0, settings.partitions), log
    assert ("resumed partition" in log) == (resumed > 0), log
    assert metric(settings, "tradeguard_partitions_restored_total") == restored_at_start, log
    assert worker.alive, log

    # The incarnation went on with the cores it held: its steps replay exactly.
    exact = provenance.replay_steps(settings, PolicyConfig.defaults(),
                                    provenance.read(settings))
    assert exact["differences"] == [], exact["differences"][:3]
    assert exact["compared"] == exact["identical"] >= len(expected)
