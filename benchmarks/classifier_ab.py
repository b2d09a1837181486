"""Does the supervised model help? The closed-loop scorecard with and without its evidence.

    python -m benchmarks.classifier_ab scenarios/full-day.toml:2025 [SCENARIO:SEED ...]

Each scenario at each seed runs in process, closed loop (customers answer step-ups,
analysts label what the engine stopped: the supervised model learns from those labels),
once under the default policy (the model weighed 0) and once with ``fraud_probability``
weighed 3.0 log-odds at P(fraud) = 1. Prints fraud yen
stopped, legitimate orders stopped per 10,000 (all, and on clean accounts) and the
legitimate stops hour by hour. Use tuning seeds only (tradeguard/scorecard/inprocess.py).
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib

from tradeguard.policy.config import DEFAULT_POLICY_FILE, PolicyConfig
from tradeguard.scorecard.inprocess import run_in_process
from tradeguard.scorecard.outcome import session_orders
from tradeguard.scorecard.score import score
from tradeguard.simulator import generate, load_scenario

WEIGHED = """[order.signals.fraud_probability]
weight = 3.0
scale = 0.5
offset = 0.5
group = "model"
"""


def main(args: list[str]) -> None:
    base = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    variants = {"default policy": PolicyConfig.defaults(),
                "fraud_probability weighed 3.0": PolicyConfig.from_toml(WEIGHED, base=base)}
    print("| scenario:seed | policy | fraud yen stopped | legit stopped per 10k | clean accounts "
          "| legit stops hour by hour |\n|---|---|---|---|---|---|")
    for arg in args:
        path, seed = arg.rsplit(":", 1)
        session = generate(dataclasses.replace(load_scenario(path), seed=int(seed)))
        orders = session_orders(session.records, session.open_ms)
        for name, policy in variants.items():
            result = run_in_process(session, policy=policy)
            o = score(orders, session.truth, result.outcome(), result.first_label_ts)["orders"]
            share = o["fraud_yen_stopped_share"]
            print(f"| {arg} | {name} | {'—' if share is None else f'{share:.1%}'} | "
                  f"{o['legit_stopped_per_10k']} | {o['legit_stopped_per_10k_clean_accounts']} | "
                  f"{[c['stopped'] for c in o['legit_stop_curve']]} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["scenarios/full-day.toml:2025"])
