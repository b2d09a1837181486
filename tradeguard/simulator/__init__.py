"""The attack simulator: scenario files in, labelled event-time streams out.

    scenario (TOML) --load_scenario--> Scenario --generate--> Session --replay--> Kafka
                                                                  \\--> GroundTruth (side file)

``generate`` is pure and deterministic (same file and seed, same bytes);
``replay`` is the only part that touches Kafka.
"""

from tradeguard.simulator.generate import Session, generate
from tradeguard.simulator.replay import replay
from tradeguard.simulator.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from tradeguard.simulator.truth import GroundTruth

__all__ = ["GroundTruth", "Scenario", "ScenarioError", "Session", "generate", "load_scenario",
           "parse_scenario", "replay"]
