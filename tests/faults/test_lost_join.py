"""A worker left out of its group after giving its partitions up joins again by itself.

On Apache Kafka 4.1 with librdkafka 2.12, a broker paused past its own controller's session
fenced itself on resume and unloaded the group coordinator while the worker's JoinGroup was
waiting: the worker was never in the group again and decided nothing more (the fault suite's
stop_broker part, 2 runs in 5). The consumer thread now watches for that: holding nothing,
with no assignment at all (an empty one counts) for a rebalance timeout and a session after
it gave its partitions up, it leaves and joins again (``KafkaPipe.stuck_join_s``).

The lost join itself cannot be made on demand, so the test makes the watch see one: a real
consumer in a real group, its clock of "held nothing since" set long ago. It must join
again (a revoke and a new assignment, of a later subscription), once, and then stay.
Break: the watch never resubscribing (or not clearing on an assignment) fails it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from agents.pipe import Assigned, KafkaPipe, Revoked

pytestmark = pytest.mark.broker


def test_a_worker_holding_nothing_past_the_bound_joins_the_group_again(engine_settings,
                                                                     caplog):
    async def main() -> list:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        pipe = KafkaPipe(engine_settings, [engine_settings.topic("orders")], inbox.put, loop)
        seen: list = []

        async def next_marker(timeout_s: float):
            deadline = loop.time() + timeout_s
            while loop.time() < deadline:
                try:
                    item = await asyncio.wait_for(inbox.get(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
                if isinstance(item, Revoked):
                    item.done.set()  # nothing to deliver: the consumer thread goes on
                if isinstance(item, (Assigned, Revoked)):
                    seen.append(item)
                    return item
            return None

        pipe.start()
        try:
            first = await next_marker(90)
            assert isinstance(first, Assigned) and first.partitions, seen
            # A bound shorter than the production one, longer than a join here takes.
            pipe.stuck_join_s = 20.0
            pipe._unassigned_since = time.monotonic() - 60  # as if a join had been lost
            revoked = await next_marker(30)
            again = await next_marker(90)
            assert isinstance(revoked, Revoked) and isinstance(again, Assigned), seen
            assert again.epoch > first.epoch and again.partitions, seen
            # Assigned again: the watch is off, nothing more happens.
            assert await next_marker(3) is None, seen
            return seen
        finally:
            pipe._stop.set()
            await loop.run_in_executor(None, pipe._thread.join, 10)
            pipe.consumer.close()
            pipe.producer.flush(5)

    with caplog.at_level(logging.WARNING, logger="tradeguard"):
        asyncio.run(main())
    assert "the join looks lost" in caplog.text
