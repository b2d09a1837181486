"""A ``KafkaPipe`` on an event loop of its own, for tests that swap its consumer for a recorder.

The pipe's real clients point at a port nobody listens on (127.0.0.1:9) and are closed on
the way out: left open, they would try it for the rest of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Awaitable, Callable, Iterator

from agents.pipe import KafkaPipe
from tradeguard.runtime.settings import Settings


@contextlib.contextmanager
def pipe_on_a_loop(hand_off: Callable[[Any], Awaitable[None]]) -> Iterator[tuple[KafkaPipe, str]]:
    """Yield the pipe and its orders topic; stop its thread (if started) and loop after."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = Settings.from_env(env={}, broker="kafka://127.0.0.1:9", web_port=0)
    pipe = KafkaPipe(settings, [settings.topic("orders")], hand_off, loop)
    real = pipe.consumer
    try:
        yield pipe, settings.topic("orders")
    finally:
        pipe._stop.set()
        if pipe._thread.ident:
            pipe._thread.join(5)
        real.close()
        pipe.producer = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
