"""The decision core: pure, deterministic, batch-columnar; it knows nothing of Kafka.

    partition.py   PartitionCore: the one entry point, per input partition
    accounts.py    the account side: logins + orders + labels -> decisions, controls, flow
    tickers.py     the ticker side: trades + flow -> halts, releases, profiles
    blocks.py      outputs as columns (decisions, flow) and the reasons encoder
    board.py       controls in force (halts, step-ups, freezes), judged in event time
    profiles.py    ticker profiles as the account side reads them, by event time
    infrastructure.py  logins of every account, for the shared-infrastructure signal
    engine.py      the whole topology in one process (scorecard, replay, tests, benchmarks)

Names are imported lazily: a gateway that only needs ``board.ControlBoard`` does not
load Numba and River with it.
"""

from importlib import import_module

__all__ = ["ACCOUNT_TOPICS", "ACTIONS", "ControlBoard", "DecisionBlock", "FlowBlock",
           "INPUT_TOPICS", "InProcessEngine", "Inputs", "Outputs", "PartitionCore", "Shared",
           "TICKER_TOPICS", "typed"]

_HOME = {"ACTIONS": "blocks", "DecisionBlock": "blocks", "FlowBlock": "blocks",
         "ControlBoard": "board", "InProcessEngine": "engine", "typed": "engine",
         "ACCOUNT_TOPICS": "partition", "INPUT_TOPICS": "partition",
         "TICKER_TOPICS": "partition", "Inputs": "partition", "Outputs": "partition",
         "PartitionCore": "partition", "Shared": "partition"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
