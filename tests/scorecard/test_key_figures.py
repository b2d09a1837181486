"""The scorecard's key figures on the shipped short scenario, decided in process.

``InProcessEngine`` (tradeguard/core/engine.py) runs every partition's core in
event time with no broker, so the figures are deterministic; its records go
through the same scoring path as ``tradeguard evaluate`` (``engine_outcome``,
``score``). An engine that stops nothing, or less than it does today, fails here.

Bounds (scenarios/short.toml, seed 20250416; measured on the in-process run):

| figure | today | bound |
|---|---|---|
| fraud yen stopped (hold or block) | 96.9% (158.2M of 163.2M) | >= 90% |
| fraudulent orders stopped | 29 of 32 | >= 27 |
| pump buys stopped | 15 of 15 | all |
| taken-over accounts stopped before their first fraudulent buy | 5 of 5 | >= 4 |
| targeted ticker halted: fraudulent buys before the halt | 2 | <= 3 |
| targeted ticker halted: seconds after the campaign start | 53.4 | <= 90, not before it |
| halts of tickers not under attack | 0 | 0 |
| legitimate session orders stopped | 0 of 24 | <= 1 |
| accounts stepped up or frozen that were not taken over | 2 | <= 3 |
"""

from __future__ import annotations

import pytest

from tradeguard.core import InProcessEngine, typed
from tradeguard.scorecard.baselines import run_baselines
from tradeguard.scorecard.engine import engine_outcome
from tradeguard.scorecard.outcome import session_orders
from tradeguard.scorecard.plots import write_plots
from tradeguard.scorecard.report import build_report
from tradeguard.scorecard.score import score

TARGET = "3569"  # the penny stock the scenario's campaign pumps


def in_process_records(session):
    """Decisions, ticker controls and account controls of one in-process run."""
    decisions, tickers, accounts = [], [], []
    for out in InProcessEngine().run([(name, typed(name, r)) for name, r in session.records]):
        decisions += out.decisions.rows()
        tickers += out.ticker_controls
        accounts += out.account_controls
    return decisions, tickers, accounts


@pytest.fixture(scope="module")
def run(short_session):
    decisions, tickers, accounts = in_process_records(short_session)
    outcome = engine_outcome(decisions, tickers, accounts)
    orders = session_orders(short_session.records, short_session.open_ms)
    return outcome, orders, tickers, score(orders, short_session.truth, outcome)


def test_the_scenario_is_the_one_the_bounds_were_set_on(short_session, run):
    _, orders, _, card = run
    assert short_session.truth.targeted_tickers == {TARGET}
    assert (card["orders"]["fraudulent"], card["orders"]["legitimate"]) == (32, 24)
    assert card["accounts"]["with_fraud_buys"] == 5
    assert card["orders"]["undecided"] == 0


def test_fraud_is_stopped_before_it_executes(run):
    orders = run[3]["orders"]
    assert orders["fraud_yen_stopped_share"] >= 0.90, orders
    assert orders["fraud_stopped"] >= 27, orders
    pump = orders["fraud_by_phase"]["pump"]
    assert pump["stopped"] == pump["count"] > 0, pump


def test_taken_over_accounts_are_stepped_up_before_their_first_fraudulent_buy(run):
    accounts = run[3]["accounts"]
    assert accounts["stopped_before_first_fraud_buy"] >= 4, accounts
    assert accounts["false_account_actions"] <= 3, accounts


def test_the_targeted_ticker_is_halted_within_three_fraudulent_buys(run):
    tickers = run[3]["tickers"]
    target = tickers["targeted"][TARGET]
    assert target["halt_source"] == "engine", target
    assert target["before_attack"] is False, target
    assert target["fraud_buys_to_halt"] <= 3, target
    assert 0 <= target["seconds_to_halt"] <= 90, target
    assert tickers["false_halt_count"] == 0, tickers["false_halts"]


def test_legitimate_orders_pass(run):
    orders = run[3]["orders"]
    assert orders["legit_held"] + orders["legit_blocked"] <= 1, orders


def test_doing_nothing_scores_zero(short_session, run):
    """The same scoring gives the no-engine baseline nothing: the figures above are earned."""
    _, orders, _, _ = run
    outcome, _ = run_baselines(short_session)["no_engine"]
    card = score(orders, short_session.truth, outcome)
    assert card["orders"]["fraud_yen_stopped"] == 0
    assert card["accounts"]["stopped_before_first_fraud_buy"] == 0
    assert card["tickers"]["targeted"][TARGET]["halt_ts"] is None


def test_the_plots_are_written_as_images(short_session, run, tmp_path):
    """matplotlib is in the test extra: the plots are drawn, never skipped."""
    import matplotlib.image

    outcome, _, tickers, _ = run
    latency = {"orders": 0, "p50": None, "p99": None, "max": None, "mean": None}
    report = build_report(short_session, "short", outcome, run_baselines(short_session),
                          latency=latency, run={}, halts=tickers)
    names = write_plots(short_session, report, outcome, tmp_path)
    assert sorted(names) == sorted([f"ticker-{TARGET}.png", "timeline.png",
                                    "precision-recall.png"])
    for name in names:
        image = matplotlib.image.imread(tmp_path / name)  # a PNG that decodes
        height, width = image.shape[:2]
        assert height >= 200 and width >= 300, (name, image.shape)
        assert image.std() > 0, f"{name} is blank"
