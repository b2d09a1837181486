"""The detection scorecard: how well the engine stops a simulated attack, against baselines.

    scenario --generate--> Session --replay (paced)--> Kafka --> worker --> decisions, controls
                              |                                                   |
                              |                                        engine_outcome (event time)
                              +--> baselines (in-process) --> Outcome             |
                                                                 \\--> score <--- Outcome
                                                                        |
                                                       report.json, report.md, plots

``score`` and the baselines are pure and testable without a broker;
``evaluate`` is the only part that starts processes and touches Kafka.
"""

from tradeguard.scorecard.baselines import RiverRules, StaticRules, run_baselines
from tradeguard.scorecard.engine import engine_outcome, latency_ms
from tradeguard.scorecard.outcome import AccountAction, Halt, Outcome, session_orders
from tradeguard.scorecard.score import score, threshold_curve

__all__ = ["AccountAction", "Halt", "Outcome", "RiverRules", "StaticRules", "engine_outcome",
           "latency_ms", "run_baselines", "score", "session_orders", "threshold_curve"]
