"""Online feature state for TradeGuard: NumPy arrays updated by Numba kernels.

Data flows one way: the agent decodes records into columnar batches
(`batches`), and the state classes learn from them and return feature
matrices whose columns are named by ACCOUNT_FEATURES / TICKER_FEATURES.
Nothing here knows about Kafka; `reference` holds the plain-Python twins
that define what each kernel computes.
"""

from .account import ACCOUNT_FEATURES, AccountFeatures, AccountParams
from .batches import (AUTH_KINDS, LOGIN_FAILURE, LOGIN_SUCCESS, OTHER, SESSION_START, AuthBatch,
                      FlowBatch, OrderBatch, TradeBatch)
from .ids import DenseIds, stable_hash64
from .ticker import TICKER_FEATURES, TickerFeatures, TickerParams

__all__ = [
    "ACCOUNT_FEATURES", "AccountFeatures", "AccountParams",
    "TICKER_FEATURES", "TickerFeatures", "TickerParams",
    
    "AuthBatch", "OrderBatch", "TradeBatch", "FlowBatch",
    "LOGIN_SUCCESS", "LOGIN_FAILURE", "SESSION_START", "OTHER", "AUTH_KINDS",
    "DenseIds", "stable_hash64",
]
