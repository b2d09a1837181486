"""A worker being stopped ignores an assignment that lands while its consumer closes.

CI saw a SIGTERMed worker exit 1: close() left the group as a rebalance handed it
partitions, the assign callback asked for their committed offsets, and librdkafka, its
handle being destroyed, refused ("Broker handle destroyed for termination"); the error came
out of close() and failed the stop. Here the callback meets a consumer that refuses the same
way, after the stop began: it must return quietly and hand no marker to the engine.
"""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from agents.pipe import KafkaPipe
from tradeguard.runtime.settings import Settings


class _ClosingConsumer:
    """What librdkafka answers while close() destroys the handle."""

    def committed(self, partitions, timeout=None):
        raise KafkaException(KafkaError(KafkaError._DESTROY,
                                        "Failed to get committed offsets: Local: Broker handle "
                                        "destroyed for termination"))

    def get_watermark_offsets(self, tp, timeout=None):
        raise KafkaException(KafkaError(KafkaError._DESTROY))


def test_an_assignment_during_the_stop_is_ignored_not_raised():
    handed: list = []

    async def hand_off(item) -> None:
        handed.append(item)

    loop = asyncio.new_event_loop()
    try:
        settings = Settings.from_env(env={}, broker="kafka://127.0.0.1:9", web_port=0)
        pipe = KafkaPipe(settings, [settings.topic("orders")], hand_off, loop)
        pipe._stop.set()  # what stop() does first, before it closes the consumer
        pipe._on_assign(_ClosingConsumer(), [TopicPartition(settings.topic("orders"), 0)])
        assert handed == [] and not pipe.assignment
        # The real clients would otherwise try 127.0.0.1:9 for the rest of the session.
        pipe.consumer.close()
        pipe.producer = None
    finally:
        loop.close()
