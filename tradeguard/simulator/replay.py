"""Produce a Session to Kafka in event-time order, as fast as possible or paced like the day.

With a speed, the session is paced on its event clock divided by the speed
(speed 1 is real time, 60 plays an hour a minute); the warm-up history before
the session opens always goes as fast as possible, since nobody wants to wait
three days for it.

>>> class Collect:
...     def __init__(self): self.sent = []
...     def send(self, name, record): self.sent.append(name)
...     def flush(self, timeout_s=30.0): pass
>>> from tradeguard.simulator.generate import Session
>>> from tradeguard.simulator.truth import GroundTruth
>>> s = Session("t", 0, 1_000, 2_000, [("auth.events", {"ts": 500}), ("orders", {"ts": 1_500})],
...             GroundTruth("t", 0, 0, 1_000, 2_000), {})
>>> replay(s, Collect(), speed=None)
{'auth.events': 1, 'orders': 1}
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

from streams.signing import ANSWERS, ControlKeys, sign
from streams.topics import AUTH_EVENTS, FEEDBACK
from tradeguard.runtime.settings import Settings
from tradeguard.simulator.generate import Session, generate
from tradeguard.simulator.scenario import load_scenario

__all__ = ["replay", "simulate"]


class _Producer(Protocol):  # GatewayProducer, or anything with its send/flush
    def send(self, name: str, record: dict) -> None: ...

    def flush(self, timeout_s: float = 30.0) -> None: ...


def replay(session: Session, producer: _Producer, speed: float | None = None,
           on_progress: Callable[[int, int], None] | None = None,
           progress_every: int = 1_000, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Send every record, in order; return how many went to each topic.

    ``on_progress(sent, total)`` is called every ``progress_every`` records and
    at the end. ``sleep`` and ``clock`` are there for tests.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0 or None, got {speed!r}")
    total, counts = len(session.records), {}
    wall0 = None
    for i, (name, record) in enumerate(session.records, 1):
        ts = record["ts"]
        if speed is not None and ts >= session.open_ms:
            if wall0 is None:
                wall0 = clock() - (ts - session.open_ms) / 1000.0 / speed
            lag = wall0 + (ts - session.open_ms) / 1000.0 / speed - clock()
            if lag > 0:
                sleep(lag)
        producer.send(name, record)
        counts[name] = counts.get(name, 0) + 1
        if on_progress is not None and (i % progress_every == 0 or i == total):
            on_progress(i, total)
    producer.flush()
    return counts


def simulate(scenario_path: str | Path, settings: Settings, speed: float | None = None,
             truth_path: str | Path | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> tuple[Session, dict]:
    """Generate a scenario and produce it to the broker in ``settings``; write the truth aside.

    The ground truth is written before the first record is sent, so a
    scorecard can start reading decisions while the replay runs.
    """
    from tradeguard.broker.clients import GatewayProducer  # Kafka only at this edge

    session = generate(load_scenario(scenario_path))
    if truth_path is not None:
        session.truth.write(truth_path)
    producer = _SigningProducer(GatewayProducer(settings), ControlKeys.from_settings(settings))
    return session, replay(session, producer, speed, on_progress)


class _SigningProducer:
    """The simulator stands in for the identity system and the case system, keyed tools both
    (docs/security.md): their step-up answers and labels are signed, or the engine only
    learns from them."""

    def __init__(self, producer: _Producer, keys: ControlKeys) -> None:
        self.producer, self.keys = producer, keys

    def send(self, name: str, record: dict) -> None:
        if name == FEEDBACK or (name == AUTH_EVENTS and record["event"] in ANSWERS):
            record = sign(record, self.keys)
        self.producer.send(name, record)

    def flush(self) -> None:
        self.producer.flush()
