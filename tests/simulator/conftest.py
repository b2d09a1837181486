"""Fixtures of the simulator tests: the shipped scenarios, generated once per run."""

from __future__ import annotations

import pytest
from sim_invariants import SCENARIOS

from tradeguard.simulator import generate, load_scenario


@pytest.fixture(scope="session")
def short_scenario():
    return load_scenario(SCENARIOS / "short.toml")


@pytest.fixture(scope="session")
def short_session(short_scenario):
    return generate(short_scenario)
