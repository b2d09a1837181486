"""The whole engine in one process, deterministic: every partition's core, flow routed in memory.

What the worker does through Kafka (orders re-keyed by ticker on ``tickers.flow``,
controls and profiles replicated through compacted topics), this does in memory,
in event time, so the same records give the same decisions however they are
batched and however fast they are fed:

- records are routed to partitions by the contract's murmur2 key, as Kafka would;
- a batch never spans a ticker-profile period: at each period boundary every
  ticker side publishes the profiles of the period that ended, and the orders
  after the boundary see them;
- every login of a batch is indexed for the shared-infrastructure signal before
  any order of it is decided (the index answers by event time);
- ticker reference data (``reference.tickers``) goes to the shared profile book,
  as the worker's replicated reader puts it there, each record valid from its ts;
- a halt raised in a batch applies to the later buys of that batch too, exactly
  as it would had the batch been cut right after its trigger.

The scorecard, ``tradeguard replay``, the benchmarks and the tests run it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Iterator

import msgspec
import numpy as np

from streams.topics import AUTH_EVENTS, partition_for, topic
from streams.wire import record_type
from tradeguard.core.accounts import HALT_EXEMPT
from tradeguard.core.blocks import BLOCK, DecisionBlock, FlowBlock, ReasonsEncoder
from tradeguard.core.partition import SHARED_TOPICS, Inputs, Outputs, PartitionCore, Shared
from tradeguard.policy.config import PolicyConfig

__all__ = ["InProcessEngine", "typed"]

PROFILE_PERIOD_MS = 60_000


def typed(name: str, record: Any) -> Any:
    """A record of registry topic ``name`` as the core reads it (validated), from a dict."""
    if isinstance(record, dict):
        return msgspec.convert(record, record_type(topic(name).schema))
    return record


class InProcessEngine:
    """N partition cores and the routing between them, fed one event-time-ordered stream."""

    def __init__(self, policy: PolicyConfig | None = None, partitions: int = 4,
                 home_market: str = "JP", anomaly_window: int = 250) -> None:
        self.policy = policy or PolicyConfig.defaults()
        self.partitions = partitions
        self.shared = Shared()
        self.cores = [PartitionCore(self.shared, home_market, anomaly_window)
                      for _ in range(partitions)]
        self._period = -1
        self._reasons = ReasonsEncoder()

    def run(self, records: Iterable[tuple[str, Any]],
            batch_size: int | Iterator[int] = 2048) -> Iterator[Outputs]:
        """Outputs per batch of ``records`` ((registry topic, record) in event-time order).

        ``batch_size`` may be an iterator of sizes (the determinism tests cut the
        stream at random); batches also end at every profile-period boundary.
        """
        sizes = batch_size if not isinstance(batch_size, int) else None
        size = next(sizes) if sizes is not None else batch_size
        batch: list[tuple[str, Any]] = []
        for name, record in records:
            period = record["ts"] // PROFILE_PERIOD_MS if isinstance(record, dict) \
                else record.ts // PROFILE_PERIOD_MS
            if batch and (len(batch) >= size or period != self._period):
                yield self.process(batch)
                batch = []
                size = next(sizes) if sizes is not None else size
            if period != self._period:
                yield self._close_periods(period * PROFILE_PERIOD_MS)
            batch.append((name, record))
        if batch:
            yield self.process(batch)

    def _close_periods(self, boundary_ms: int) -> Outputs:
        out = Outputs()
        self._period = boundary_ms // PROFILE_PERIOD_MS
        for core in self.cores:
            out.profiles += core.tickers.close_periods(boundary_ms)
        self.shared.apply_profiles(out.profiles)
        return out

    def process(self, batch: list[tuple[str, Any]]) -> Outputs:
        """One batch of the stream through every partition: account side, flow, ticker side."""
        by_partition: dict[int, Inputs] = defaultdict(Inputs)
        grouped: dict[str, list[Any]] = defaultdict(list)
        for name, record in batch:
            grouped[name].append(typed(name, record))
        for name in SHARED_TOPICS:  # reference data: every partition's, before any order
            if name in grouped:
                self.shared.apply(name, grouped.pop(name))
        self.shared.infra.observe(grouped.get(AUTH_EVENTS, []))
        for name, records in grouped.items():
            key = topic(name).key
            parts: dict[int, list[Any]] = defaultdict(list)
            for r in records:
                parts[partition_for(getattr(r, key), self.partitions)].append(r)
            for p, rs in parts.items():
                by_partition[p].add(name, rs)
        # Through PartitionCore's two sides, as a worker calls them; but the account sides
        # first, so this batch's flow reaches the ticker sides in the same batch (a worker's
        # comes back through tickers.flow on its next step).
        out = Outputs()
        for p in sorted(by_partition):
            inputs = by_partition[p]
            side = self.cores[p].process_accounts(
                Inputs(orders=inputs.orders, auth=inputs.auth, feedback=inputs.feedback),
                self.policy, Outputs())
            out.decisions = out.decisions.concat(side.decisions)
            out.flows = out.flows.concat(side.flows)
            out.account_controls += side.account_controls
        flows_by_partition: dict[int, list[int]] = defaultdict(list)
        for i, ticker in enumerate(out.flows.ticker):
            flows_by_partition[partition_for(ticker, self.partitions)].append(i)
        for p in sorted(set(by_partition) | set(flows_by_partition)):
            trades = by_partition[p].trades if p in by_partition else []
            flows = (out.flows.take(flows_by_partition[p]) if p in flows_by_partition
                     else FlowBlock.empty())
            side = self.cores[p].process_tickers(Inputs(trades=trades, flows=flows), self.policy)
            out.ticker_controls += side.ticker_controls
            out.profiles += side.profiles
        self.shared.apply_profiles(out.profiles)
        self._halts_within(out)
        return out

    def _halts_within(self, out: Outputs) -> None:
        """Block the buys of this batch that came after a halt raised in it."""
        decisions: DecisionBlock = out.decisions
        if not len(decisions):
            return
        position = {order_id: i for i, order_id in enumerate(decisions.order_id)}
        order_ts = decisions.order_ts
        for halt in out.ticker_controls:
            if halt["action"] != "halt_buys":
                continue
            trigger = position.get(halt["evidence"].get("trigger_order_id"), len(decisions))
            for i in np.flatnonzero(order_ts >= halt["ts"]).tolist():
                later = order_ts[i] > halt["ts"] or i > trigger
                if (later and decisions.ticker[i] == halt["ticker"]
                        and decisions.side[i] == "buy" and order_ts[i] < halt["expires_at"]):
                    core = self.cores[partition_for(decisions.account_id[i], self.partitions)]
                    if decisions.order_id[i] in core.accounts.halt_clean:
                        reasons = ReasonsEncoder.decode(decisions.reasons[i])
                        if not any(r["code"] == HALT_EXEMPT for r in reasons):
                            decisions.reasons[i] = self._reasons.prepend(
                                [HALT_EXEMPT], decisions.reasons[i], self.policy.max_reasons)
                        continue
                    decisions.action[i] = BLOCK
                    decisions.reasons[i] = self._reasons.prepend(
                        ["ticker_halted"], decisions.reasons[i], self.policy.max_reasons)

