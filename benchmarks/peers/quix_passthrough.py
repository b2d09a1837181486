"""The Quix Streams peer: a StreamingDataFrame that decodes each order and writes a decision shape.

    QUIX_PYTHON quix_passthrough.py BOOTSTRAP TOPIC_PREFIX GROUP STATE_DIR

Run by path with whatever interpreter has ``quixstreams`` (the ``bench`` extra,
or ``$TRADEGUARD_BENCH_QUIX_PYTHON``); it needs nothing of the engine but the
shape of a decision.
"""

from __future__ import annotations

import sys
from pathlib import Path

from quixstreams import Application

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shape import decision_shaped  # noqa: E402


def main(argv: list[str]) -> None:
    bootstrap, prefix, group, state_dir = argv
    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", auto_create_topics=False,
                      state_dir=state_dir, loglevel="WARNING",
                      producer_extra_config={"linger.ms": 1},
                      # The engine's Faust session settings: librdkafka's 45 s default
                      # makes the first group join on the embedded broker take ~20 s.
                      consumer_extra_config={"session.timeout.ms": 10_000,
                                             "heartbeat.interval.ms": 1_000})
    orders = app.topic(f"{prefix}orders", key_deserializer="bytes", value_deserializer="json")
    decisions = app.topic(f"{prefix}decisions", key_serializer="bytes", value_serializer="json")
    app.dataframe(orders).apply(decision_shaped).to_topic(decisions)
    app.run()


if __name__ == "__main__":
    main(sys.argv[1:])
