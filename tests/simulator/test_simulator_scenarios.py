"""Scenario files: every shipped one loads, and a bad key is named in the error."""

from __future__ import annotations

import pytest
from sim_invariants import SCENARIOS

from tradeguard.simulator import ScenarioError, load_scenario, parse_scenario

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_load(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem and scenario.description


def test_shipped_set_covers_short_to_full_day():
    names = {p.stem for p in SCENARIOS.glob("*.toml")}
    assert {"short", "campaign-wave", "hard-negatives", "full-day"} <= names
    assert not load_scenario(SCENARIOS / "hard-negatives.toml").campaigns
    assert load_scenario(SCENARIOS / "full-day.toml").session.duration_s == 23_400


def test_a_file_overrides_only_the_keys_it_names():
    s = parse_scenario({"market": {"tiers": {"penny": {"count": 7}}},
                        "population": {"day_traders": {"count": 3}}})
    assert s.market.tiers["penny"].count == 7 and s.market.tiers["penny"].lot == 100
    assert s.population.roles["day_traders"].count == 3
    assert s.population.roles["index_holders"].count == 300


CAMPAIGN = {"start_s": 10}


@pytest.mark.parametrize("doc, message", [
    ({"sed": 1}, "sed: unknown key"),
    ({"seed": -1}, "seed: must be >= 0"),
    ({"seed": "7"}, "seed: expected an integer, got string"),
    ({"session": {"duration_s": True}}, "session.duration_s: expected a number, got boolean"),
    ({"session": {"open": "09:00"}}, "session.open: expected an offset date-time"),
    ({"session": {"duration_s": 60, "lunch_start_s": 50, "lunch_s": 20}}, "session.lunch_s"),
    ({"market": {"tiers": {"penny": {"count": "3"}}}}, "market.tiers.penny.count: expected an int"),
    ({"market": {"tiers": {"exotic": {"count": 3}}}}, "market.tiers.exotic.market: required key"),
    ({"market": {"tiers": {"mid": {"price_range": [10]}}}}, "market.tiers.mid.price_range"),
    ({"market": {"tiers": {"mid": {"holders": ["whales"]}}}},
     "market.tiers.mid.holders[0]: must be one of"),
    ({"population": {"whales": {"count": 1}}}, "population.whales: unknown key"),
    ({"population": {"day_traders": {"cont": 1}}}, "population.day_traders.cont: unknown"),
    ({"campaigns": [{}]}, "campaigns[0].start_s: required key is missing"),
    ({"campaigns": [{**CAMPAIGN, "trade_rate": 1.5}]}, "campaigns[0].trade_rate: must be <= 1"),
    ({"campaigns": [{**CAMPAIGN, "techniques": {"smishing": 1}}]},
     "campaigns[0].techniques.smishing: unknown"),
    ({"campaigns": [{**CAMPAIGN, "techniques": {"aitm": 0}}]}, "campaigns[0].techniques: weights"),
    ({"campaigns": [{**CAMPAIGN, "targets": [{"tier": "crypto"}]}]},
     "campaigns[0].targets[0].tier: unknown tier 'crypto'"),
    ({"campaigns": [{**CAMPAIGN, "targets": [{"tier": "penny", "count": 9}]}]},
     "campaigns: 9 targets wanted in tier 'penny'"),
    ({"campaigns": [{**CAMPAIGN, "infra": {"asns": []}}]}, "campaigns[0].infra: asns"),
    ({"campaigns": [{**CAMPAIGN, "accomplice_broker": "mars"}]},
     "campaigns[0].accomplice_broker: must be one of"),
    ({"campaigns": [{"start_s": 99_999}]}, "campaigns[0].start_s: 99999 is not inside"),
    ({"negatives": [{"kind": "alien", "start_s": 0}]}, "negatives[0].kind: must be one of"),
    ({"negatives": [{"kind": "news_rush", "start_s": 0, "tier": "nope"}]},
     "negatives[0].tier: unknown tier"),
    ({"negatives": [{"kind": "travel", "start_s": 0, "accounts": 10**6}]},
     "population: 440 accounts cannot supply"),
    ({"feedback": {"enabled": "yes"}}, "feedback.enabled: expected true or false"),
])
def test_errors_name_the_key(doc, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc)
    assert str(err.value).startswith(message), str(err.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 3\n")
    with pytest.raises(ScenarioError, match="bad.toml: not valid TOML"):
        load_scenario(bad)
