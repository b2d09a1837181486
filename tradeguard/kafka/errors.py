"""The one error type of the Kafka edge."""

from __future__ import annotations

__all__ = ["BrokerError"]


class BrokerError(RuntimeError):
    """A broker cannot be started or reached, or a topic it should hold is missing.

    The message names the address or the topic and says what to do about it.
    """
