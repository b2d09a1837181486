"""Faust's aiokafka consumer with a fetch wait we choose.

Faust hard-codes ``fetch_max_wait_ms=1500`` for its stream consumer. A broker
that does not answer a long-poll as soon as data arrives (the embedded Tansu
broker is one: measured ~450 ms per fetch) then adds that wait to every hop:
order -> decision, and again on the ticker repartition. A short wait costs a
few more idle fetch requests per second and keeps each hop at milliseconds.
"""

from __future__ import annotations

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["use_fetch_wait"]


def use_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> None:
    """Make ``app``'s stream consumer long-poll for at most ``fetch_max_wait_ms``."""

    class Thread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport):
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the fetcher starts
            return consumer

    class Consumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self):
            return Thread(self, loop=self.loop, beacon=self.beacon)

    app.transport.Consumer = Consumer
