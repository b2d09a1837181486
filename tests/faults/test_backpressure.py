"""The consumer thread hands each poll to the engine exactly once, however long the engine
takes (found by the fuzz benchmark: under back-pressure each poll was handed over again every
second, so its records were decided and dead-lettered up to 42 times)."""

from __future__ import annotations

import asyncio
import threading
import time

from agents.pipe import KafkaPipe
from tradeguard.runtime.settings import Settings


def test_a_poll_waits_for_room_and_is_queued_once():
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        room = asyncio.Queue(maxsize=1)  # the taker: full after one poll
        pipe = KafkaPipe(Settings.from_env(env={}, broker="kafka://127.0.0.1:9"), [], room.put,
                         loop)
        try:
            sender = threading.Thread(target=lambda: [pipe._put(i) for i in range(3)])
            sender.start()
            got = []
            while len(got) < 3:
                got.append(await room.get())
                await asyncio.sleep(0)  # the next hand-over completes on the loop ...
                time.sleep(1.2)  # ... then a step blocks it longer than the hand-over waits
            # Wall clock on purpose: these waits are the slow consumer the test is about
            # (longer than the hand-over's own timeout), and then room for a repeat that
            # must not come: an absence can only be watched for a while.
            await asyncio.sleep(1.5)
            while not room.empty():
                got.append(room.get_nowait())
            sender.join(5)
            return got
        finally:
            pipe._stop.set()
            pipe.consumer.close()

    assert asyncio.run(main()) == [0, 1, 2]
