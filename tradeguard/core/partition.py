"""The decision core of one input partition: the one entry point to features, models and policy.

Partition ``p`` of every input topic (orders, auth.events, feedback keyed by
account; market.trades and tickers.flow keyed by ticker) shares one
``PartitionCore``. It knows nothing of Kafka: a batch of typed records per
topic goes in (``Inputs``), typed outputs come out (``Outputs``): decision and
flow blocks as columns, controls and profiles as records. The live worker,
restart replay, ``tradeguard replay``, the scorecard, the benchmarks and the
tests all call ``process``.

Decisions are a function of the records in event-time order and of the control
board (and, on a worker, the shared ticker profiles and login index): no wall
clock is read here. Cutting the same stream into different batches gives the
same outputs (``tests/core/test_core_determinism.py``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from streams.topics import (AUTH_EVENTS, FEEDBACK, MARKET_TRADES, ORDERS, REFERENCE_TICKERS,
                            TICKERS_FLOW)
from tradeguard.core.accounts import IDLE_HORIZON_S, AccountCore, AccountOutputs
from tradeguard.core.blocks import DecisionBlock, FlowBlock
from tradeguard.core.board import ControlBoard
from tradeguard.core.infrastructure import InfrastructureWatch
from tradeguard.core.profiles import ProfileBook
from tradeguard.core.tickers import TickerCore
from tradeguard.policy.config import PolicyConfig

__all__ = ["ACCOUNT_TOPICS", "INPUT_TOPICS", "Inputs", "Outputs", "PartitionCore", "SHARED_TOPICS",
           "Shared", "TICKER_TOPICS"]

#: Input topics by the side of the core that reads them (all co-partitioned).
ACCOUNT_TOPICS = (ORDERS, AUTH_EVENTS, FEEDBACK)
TICKER_TOPICS = (MARKET_TRADES, TICKERS_FLOW)
INPUT_TOPICS = ACCOUNT_TOPICS + TICKER_TOPICS
#: Inputs of every partition alike, read whole (compacted) into ``Shared``, not partitioned.
SHARED_TOPICS = (REFERENCE_TICKERS,)


@dataclass
class Inputs:
    """One batch of one partition: typed records per topic, each in its partition's order."""

    orders: list[Any] = field(default_factory=list)
    auth: list[Any] = field(default_factory=list)
    feedback: list[Any] = field(default_factory=list)
    trades: list[Any] = field(default_factory=list)
    flows: FlowBlock = field(default_factory=FlowBlock.empty)

    def add(self, topic: str, records: list[Any]) -> None:
        """Append decoded records of registry topic ``topic``."""
        if topic == ORDERS:
            self.orders += records
        elif topic == AUTH_EVENTS:
            self.auth += records
        elif topic == FEEDBACK:
            self.feedback += records
        elif topic == MARKET_TRADES:
            self.trades += records
        elif topic == TICKERS_FLOW:
            self.flows = self.flows.concat(FlowBlock.from_records(records))
        elif topic in SHARED_TOPICS:
            raise ValueError(f"{topic!r} is shared by every partition: Shared.apply({topic!r}, "
                             "records), not one partition's input")
        else:
            raise ValueError(f"{topic!r} is not an input of the core; inputs: {INPUT_TOPICS}")

    def __len__(self) -> int:
        return (len(self.orders) + len(self.auth) + len(self.feedback) + len(self.trades)
                + len(self.flows))


@dataclass
class Outputs:
    """What one batch produced, each kind in the order it was decided."""

    decisions: DecisionBlock = field(default_factory=DecisionBlock.empty)
    flows: FlowBlock = field(default_factory=FlowBlock.empty)
    account_controls: list[dict[str, Any]] = field(default_factory=list)
    ticker_controls: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: "Outputs") -> None:
        self.decisions = self.decisions.concat(other.decisions)
        self.flows = self.flows.concat(other.flows)
        self.account_controls += other.account_controls
        self.ticker_controls += other.ticker_controls
        self.profiles += other.profiles


@dataclass
class Shared:
    """What every partition of one process shares, replicated from compacted topics and logins.

    ``board``: halts and account controls in force; ``profiles``: each ticker's normal
    daily traded value and last price, by event time, learned from trades or, before any,
    from the reference data (``reference.tickers``); ``infra``: every account's recent
    logins, for the shared-infrastructure signal.
    """

    board: ControlBoard = field(default_factory=ControlBoard)
    profiles: ProfileBook = field(default_factory=ProfileBook)
    infra: InfrastructureWatch = field(default_factory=InfrastructureWatch)
    #: (registry topic, partition) -> next offset applied here from a replicated topic: a
    #: worker's provenance (what it had read when it decided), stamped on its steps.
    seen: dict[tuple[str, int], int] = field(default_factory=dict)
    seen_from: dict[tuple[str, int], int] = field(default_factory=dict)  # first offset applied

    def apply_profiles(self, profiles: list[Any]) -> None:
        for p in profiles:
            get = p.get if isinstance(p, dict) else p.__getattribute__
            self.profiles.apply(get("ticker"), get("ts"), get("adv_value"), get("last_price"))

    def apply(self, topic: str, records: list[Any]) -> None:
        """Records of one of ``SHARED_TOPICS``, for every partition alike."""
        if topic == REFERENCE_TICKERS:
            self.profiles.apply_reference(records)
        else:
            raise ValueError(f"{topic!r} is not shared by the partitions; shared: "
                             f"{SHARED_TOPICS}")


class PartitionCore:
    """Account and ticker state of one partition, and ``process``, the one way in."""

    def __init__(self, shared: Shared, home_market: str = "JP", anomaly_window: int = 250,
                 accounts: AccountCore | None = None, tickers: TickerCore | None = None,
                 idle_horizon_s: float = IDLE_HORIZON_S) -> None:
        self.shared = shared
        self.accounts = accounts or AccountCore(home_market, profiles=shared.profiles,
                                                anomaly_window=anomaly_window, infra=shared.infra,
                                                idle_horizon_s=idle_horizon_s)
        self.tickers = tickers or TickerCore(infra=shared.infra)

    def process(self, inputs: Inputs, cfg: PolicyConfig,
                board: ControlBoard | None = None) -> Outputs:
        """Watch the batch's tickers, then decide its orders; no I/O, no wall clock.

        ``board`` defaults to the shared one; restart replay passes a scratch board,
        since what it re-decides was published before.
        """
        return self.process_accounts(inputs, cfg, self.process_tickers(inputs, cfg, board),
                                     board)

    def process_tickers(self, inputs: Inputs, cfg: PolicyConfig,
                        board: ControlBoard | None = None) -> Outputs:
        """The ticker side alone (a worker runs every partition's first, see agents/engine)."""
        out = Outputs()
        if inputs.trades or len(inputs.flows):
            side = self.tickers.process(inputs.trades, inputs.flows,
                                        self.shared.board if board is None else board, cfg)
            out.ticker_controls, out.profiles = side.ticker_controls, side.profiles
        return out

    def process_accounts(self, inputs: Inputs, cfg: PolicyConfig, out: Outputs,
                         board: ControlBoard | None = None) -> Outputs:
        """The account side, adding to ``out`` (what the ticker side produced)."""
        if inputs.orders or inputs.auth or inputs.feedback:
            side: AccountOutputs = self.accounts.process(
                inputs.auth, inputs.orders, inputs.feedback,
                self.shared.board if board is None else board, cfg)
            out.decisions, out.flows = side.decisions, side.flows
            out.account_controls = side.account_controls
        return out

    def shadow(self, cfg: PolicyConfig) -> DecisionBlock:
        """The last batch's orders under a candidate policy (shadow mode; nothing learned)."""
        return self.accounts.shadow(self.shared.board, cfg)

    def to_bytes(self) -> bytes:
        return pickle.dumps({"format": 1, "accounts": self.accounts.to_bytes(),
                             "tickers": self.tickers.to_bytes()},
                            protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes, shared: Shared) -> "PartitionCore":
        """Restore a snapshot written by ``to_bytes`` (our own state topic only: it is a pickle)."""
        state = pickle.loads(blob)
        if state.get("format") != 1:
            raise ValueError(f"partition snapshot format {state.get('format')!r}, expected 1")
        return cls(shared,
                   accounts=AccountCore.from_bytes(state["accounts"], shared.profiles,
                                                   shared.infra),
                   tickers=TickerCore.from_bytes(state["tickers"], shared.infra))
