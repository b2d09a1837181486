"""Publish manual control records (``tradeguard controls release ...``)."""

from __future__ import annotations

import time
from typing import Any

from streams.codec import encode_key, encode_value
from streams.records import ACCOUNT_CONTROL, TICKER_CONTROL
from streams.signing import ControlKeys, sign
from tradeguard.kafka.admin import wait_reachable
from tradeguard.kafka import clients
from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.settings import Settings

__all__ = ["publish_release"]


def publish_release(settings: Settings, kind: str, key: str, reason: str) -> dict[str, Any]:
    """Write a ``release`` for a ticker or an account and wait until the broker has it."""
    now = int(time.time() * 1000)
    if kind == "ticker":
        topic, schema = "controls.tickers", TICKER_CONTROL
        record = {"ticker": key, "action": "release", "reason": reason, "evidence": None,
                  "expires_at": None, "source": "cli", "ts": now}
    else:
        topic, schema = "controls.accounts", ACCOUNT_CONTROL
        record = {"account_id": key, "action": "release", "reason": reason, "evidence": None,
                  "source": "cli", "ts": now}
    schema.validate(record)  # the CLI names a bad key before the broker sees it
    record = sign(record, ControlKeys.from_settings(settings))  # or no worker enforces it
    wait_reachable(settings)
    errors: list[str] = []
    producer = clients.producer(settings)
    producer.produce(settings.topic(topic), key=encode_key(key), value=encode_value(record),
                     on_delivery=lambda err, _msg: err and errors.append(str(err)))
    if producer.flush(10) or errors:
        raise BrokerError(f"could not publish the release to {settings.topic(topic)}: "
                          f"{errors or 'timed out'}")
    return record
