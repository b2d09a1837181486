"""The gateway client: an order in, the engine's decision out within a deadline, or a fallback.

The package an order gateway (or a test, the demo, a benchmark) uses to talk to
the engine as the contract in ``streams/`` says: ``GatewayClient`` sends orders
and correlates decisions, holds its own copy of the control topics, and falls
back fail-open or fail-closed when the engine is late. The guide is
``docs/gateway.md``.
"""

from tradeguard.gateway.client import GatewayClient
from tradeguard.gateway.decision import FAIL_MODES, GatewayDecision, LateDisagreement
from tradeguard.gateway.ledger import OrderInFlight

__all__ = ["FAIL_MODES", "GatewayClient", "GatewayDecision", "LateDisagreement", "OrderInFlight"]
