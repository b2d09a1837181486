"""The Kafka edge: every client, the per-broker tuning and the one error type.

Nothing here imports the decision core, Numba, River or Faust: the gateway client
depends on this package and on ``streams`` only.
"""

from tradeguard.kafka.clients import (admin, end_offsets, group_consumer, partitions, producer,
                                      reader)
from tradeguard.kafka.errors import BrokerError
from tradeguard.kafka.profiles import BROKER_PROFILES, BrokerProfile, profile

__all__ = ["BROKER_PROFILES", "BrokerError", "BrokerProfile", "admin", "end_offsets",
           "group_consumer", "partitions", "producer", "profile", "reader"]
