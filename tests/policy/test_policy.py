"""Policy configuration and the per-order scoring rule."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradeguard.policy.config import PolicyConfig, PolicyError, PolicyFile
from tradeguard.policy.orders import ALLOW, BLOCK, HOLD, MIN_REASON_RISK, score_orders

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

CFG = PolicyConfig.defaults()
NAMES = ("new_device", "new_ip", "new_asn", "new_country", "new_user_agent",
         "failed_logins_before", "liquidation_ratio", "thin_ticker_notional_x_adv")


def test_defaults_load_and_are_consistent():
    assert 0 < CFG.hold_at < CFG.block_at <= 1
    assert CFG.signals["thin_ticker_notional_x_adv"].scale == 0.05
    assert CFG.halt_risky_buyers == 2


def test_takeover_needs_a_stranger_and_an_attackers_order():
    """Evidence adds in log-odds: who is behind the order and what it is both count, and
    the honest versions of either alone stay allowed."""
    rows = {
        # every login attribute new, no failures, an ordinary order: a stranger, doing little
        "stranger_ordinary_order": [1, 1, 1, 1, 1, 0, 0, 0],
        # every login attribute new after two failed attempts: the takeover login's signature
        "takeover_login": [1, 1, 1, 1, 1, 2, 0, 0],
        # ...then liquidating and buying a thin ticker
        "takeover_pump": [1, 1, 1, 1, 1, 2, 0.95, 0.2],
        "stranger_selling_everything": [1, 1, 1, 1, 1, 0, 1.0, 0],
        "new_phone_at_home_selling_half": [1, 1, 0, 0, 1, 0, 0.5, 0],
        "travelling_own_device_selling_half": [0, 1, 1, 1, 0, 0, 0.5, 0],
        "day_trader_sell_all_then_thin_buy": [0, 0, 0, 0, 0, 0, 1.0, 0.05],
    }
    v = score_orders(np.array(list(rows.values()), float), NAMES, CFG)
    actions = dict(zip(rows, (v.action(i, CFG) for i in range(len(rows)))))
    assert actions == {"stranger_ordinary_order": ALLOW, "takeover_login": HOLD,
                       "takeover_pump": BLOCK, "stranger_selling_everything": HOLD,
                       "new_phone_at_home_selling_half": ALLOW,
                       "travelling_own_device_selling_half": ALLOW,
                       "day_trader_sell_all_then_thin_buy": ALLOW}
    codes = [r["code"] for r in v.reasons(2, 4)]
    assert "new_device" in codes and "liquidation_ratio" in codes


def test_what_the_account_usually_does_weighs_less():
    names = ("liquidation_ratio", "usual_liquidation", "new_device", "new_asn")
    x = np.array([[1.0, 0.0, 1, 1], [1.0, 0.9, 1, 1], [1.0, 1.0, 1, 1]])
    v = score_orders(x, names, CFG)
    assert v.scores[0] > v.scores[1] > v.scores[2]
    assert v.actions(CFG)[0] == HOLD and v.actions(CFG)[2] == ALLOW


def test_a_passed_step_up_explains_the_session_evidence_away():
    x = np.array([[1, 1, 1, 1, 1, 0, 1.0, 0]] * 2, float)
    v = score_orders(x, NAMES, CFG, verified=np.array([False, True]))
    assert v.actions(CFG) == [HOLD, ALLOW]
    assert [r["code"] for r in v.reasons(1, 4)] == ["liquidation_ratio"]


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (5, len(NAMES)), elements=st.floats(0, 1e6)),
       st.integers(0, len(NAMES) - 1), st.floats(0, 10))
def test_score_is_a_probability_and_monotone_in_every_signal(x, j, bump):
    base = score_orders(x, NAMES, CFG).scores
    assert np.all((0 < base) & (base < 1))
    raised = x.copy()
    raised[:, j] += bump
    assert np.all(score_orders(raised, NAMES, CFG).scores >= base - 1e-12)


def reasons_twin(row: np.ndarray, limit: int) -> list[tuple[str, float]]:
    """The reason rule written from the policy file: each signal's evidence is
    weight x clip((x - offset) / scale, 0, 1) (no baseline among NAMES); reasons are those adding at least
    MIN_REASON_RISK, strongest first, ties in the policy file's order, at most ``limit``."""
    present = [n for n in CFG.signals if n in NAMES]
    risk = {n: CFG.signals[n].weight * min(max((row[NAMES.index(n)] - CFG.signals[n].offset)
                                               / CFG.signals[n].scale, 0.0), 1.0)
            for n in present}
    ranked = sorted(present, key=lambda n: (-risk[n], present.index(n)))[:limit]
    return [(n, row[NAMES.index(n)]) for n in ranked if risk[n] >= MIN_REASON_RISK]


# Saturating and repeated values, so many signals tie on their weight and ties are common.
signal_values = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 100.0]), st.floats(0, 100))


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, (3, len(NAMES)), elements=signal_values), st.integers(0, len(NAMES)))
def test_reasons_are_the_contributing_signals_strongest_first(x, limit):
    v = score_orders(x, NAMES, CFG)
    for i in range(3):
        got = [(r["code"], r["value"]) for r in v.reasons(i, limit)]
        expected = reasons_twin(x[i], limit)
        assert [code for code, _ in got] == [code for code, _ in expected]
        assert [value for _, value in got] == pytest.approx([value for _, value in expected],
                                                            abs=5e-5)  # rounded to 4 places
        assert v.all_reasons(limit)[i] == v.reasons(i, limit)


def test_tied_reasons_come_in_the_policy_files_order():
    """Two pairs of equal weights (new_asn = new_country = 1.5, liquidation = thin = 3.0 in
    default.toml); the file's order breaks ties."""
    x = np.array([[0, 0, 1, 1, 0, 3, 1, 1]], float)
    v = score_orders(x, NAMES, CFG)
    assert [r["code"] for r in v.reasons(0, 8)] == [  # failed logins weigh 4.0, above the ties
        "failed_logins_before", "liquidation_ratio", "thin_ticker_notional_x_adv", "new_asn",
        "new_country"]
    assert [code for code, _ in reasons_twin(x[0], 8)] == [r["code"] for r in v.reasons(0, 8)]


def test_model_scores_are_signals_and_missing_ones_are_skipped():
    x = np.zeros((2, 1))
    v = score_orders(x, ("new_device",), CFG, {"anomaly": np.array([0.0, 1.0])})
    assert "anomaly" in v.signal_names and "fraud_probability" not in v.signal_names
    evidence = CFG.signals["anomaly"].weight
    assert v.scores[1] == pytest.approx(1 / (1 + np.exp(-(CFG.prior_log_odds + evidence))))


def test_wrong_feature_matrix_shape_is_named():
    with pytest.raises(ValueError, match=r"features must be \(n, 2\)"):
        score_orders(np.zeros((3, 3)), ("a", "b"), CFG)


@pytest.mark.parametrize("text, message", [
    ("[order\nhold_at = 1", "not valid TOML"),
    ("[order]\nhold_at = 'high'", r"\[order\] hold_at must be a number"),
    ("[order]\nhold_at = 1.5", r"\[order\] hold_at must be in \[0, 1\]"),
    ("[order]\nhold_at = 0.5\nblock_at = 1.01", r"\[order\] block_at must be in \[0, 1\], got 1.01"),
    ("[order]\nhold_at = { at = 0.5 }", r"\[order\] hold_at must be a number, got \{'at': 0.5\}"),
    ("[order]\nhold_at = 0.9\nblock_at = 0.5", "hold_at must not exceed block_at"),
    ("[order.signals.new_device]\nweight = 21\nscale = 1", r"\[order.signals.new_device\] weight"),
    ("[order.signals.new_device]\nweight = 1\nscale = 1\ngroup = 'who'", "group must be one of"),
    ("[order.signals.liquidation_ratio]\ndiscount_by = 'usual_liquidaton'", "discount_by must name"),
    ("[order.signals.new_device]\nscale = nan", r"scale must be a finite number, got nan"),
    ("[order.signals.new_device]\nweight = '3.5'", "weight must be a finite number"),
    ("[order.signals.new_device]\ngrup = 'session'", r"unknown key\(s\) \['grup'\]"),
    ("[order]\nhold_at = -0.1", r"\[order\] hold_at must be in \[0, 1\], got -0.1"),
    ("[account]\nstep_up_at = 0.9\nfreeze_at = 0.8", "step_up_at must not exceed freeze_at"),
    ("[ticker]\nwindow_s = 0.5", r"\[ticker\] window_s must be in \[1, inf\]"),
    ("[order.signals.new_device]\nweight = [1]\nscale = 1", "weight must be a finite number, got \\[1\\]"),
    ("[network]\nhosting_asns = 16509", r"\[network\] hosting_asns must be a list of AS numbers"),
    ("[network]\nhosting_asns = [16509, 'AS9009']", r"\[network\] hosting_asns: 'AS9009' is not"),
    ("[network]\nhosting_asns = [0]", r"\[network\] hosting_asns: 0 is not an AS number"),
])
def test_bad_policy_files_are_refused_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message):
        PolicyFile(path)


def _prior_only(cfg: PolicyConfig):
    """Three orders with no evidence: each scores the prior, strictly between 0 and 1."""
    return score_orders(np.ones((3, 1)), ("not_a_signal",), cfg)


def _takeover_controls(cfg: PolicyConfig) -> list[str]:
    """The account controls a stranger's sell-off raises under ``cfg`` (the step-up story)."""
    from tests.core.test_step_up_loop import story
    from tradeguard.core import InProcessEngine
    controls = []
    for out in InProcessEngine(policy=cfg).run(story(None)[:3]):
        controls += [c["action"] for c in out.account_controls]
    return controls


def _window_used(cfg: PolicyConfig) -> float:
    """The ticker side's window, as the features it builds from the policy have it."""
    from tradeguard.core.tickers import TickerCore
    return TickerCore()._features(cfg).params.window_s


@pytest.mark.parametrize("text, used", [
    # the lowest thresholds: every order, even with no evidence, is blocked
    ("[order]\nhold_at = 0\nblock_at = 0",
     lambda cfg: (cfg.hold_at, cfg.block_at, _prior_only(cfg).actions(cfg)) == (
         0.0, 0.0, [BLOCK] * 3)),
    # the highest: nothing short of certainty holds
    ("[order]\nhold_at = 1\nblock_at = 1",
     lambda cfg: (cfg.hold_at, cfg.block_at, _prior_only(cfg).actions(cfg)) == (
         1.0, 1.0, [ALLOW] * 3)),
    # hold and block on one value: at it, block (the stricter) wins
    ("[order]\nprior_log_odds = 0\nhold_at = 0.5\nblock_at = 0.5",
     lambda cfg: _prior_only(cfg).scores.tolist() == [0.5] * 3
     and _prior_only(cfg).actions(cfg) == [BLOCK] * 3),
    # step-up and freeze on one value: the takeover's sell-off freezes at once, no challenge
    ("[account]\nstep_up_at = 0.8\nfreeze_at = 0.8",
     lambda cfg: (cfg.step_up_at, cfg.freeze_at, _takeover_controls(cfg)) == (
         0.8, 0.8, ["freeze"])),
    # the ticker window's smallest value is one bucket of the ticker features (30 s)
    ("[ticker]\nwindow_s = 30", lambda cfg: _window_used(cfg) == cfg.window_s == 30.0),
    ("[ticker]\nwindow_s = 90", lambda cfg: _window_used(cfg) == cfg.window_s == 90.0),
])
def test_values_on_the_bounds_are_accepted_and_used(tmp_path, text, used):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    cfg = PolicyFile(path).current()
    assert used(cfg)


@pytest.mark.parametrize("window_s", [1, 1.5, 29, 45])
def test_a_ticker_window_the_features_cannot_cut_into_buckets_is_refused(tmp_path, window_s):
    """The policy used to accept 1 s and the ticker side then failed on its first order flow
    (``TickerParams``: a whole number of 30 s buckets): refused at load, with the key named."""
    path = tmp_path / "policy.toml"
    path.write_text(f"[ticker]\nwindow_s = {window_s}")
    with pytest.raises(PolicyError, match=r"\[ticker\] window_s must be a whole number of 30 s"):
        PolicyFile(path)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (20, len(NAMES)), elements=signal_values))
def test_action_codes_are_the_actions(x):
    v = score_orders(x, NAMES, CFG)
    codes = {ALLOW: 0, HOLD: 1, BLOCK: 2}
    assert v.action_codes(CFG).tolist() == [codes[a] for a in v.actions(CFG)]
    assert v.action_codes(CFG).dtype == np.int8


def test_a_batch_with_no_policy_signal_scores_zero_with_no_reasons():
    v = score_orders(np.ones((3, 1)), ("not_a_signal",), CFG)
    prior = 1 / (1 + np.exp(-CFG.prior_log_odds))  # the base rate: no evidence either way
    assert v.scores.tolist() == pytest.approx([prior] * 3) and v.signal_names == ()
    assert v.all_reasons(4) == [[], [], []] and v.actions(CFG) == [ALLOW] * 3


def test_policy_file_reloads_when_changed_and_keeps_the_last_good_one(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text("[order]\nhold_at = 0.4\n")
    policy = PolicyFile(path, check_every_s=0)
    assert policy.current().hold_at == 0.4 and policy.current().block_at == CFG.block_at
    path.write_text("[order]\nhold_at = 0.3\n")
    os.utime(path, (1, 1))  # a different mtime, whatever the clock resolution
    assert policy.current().hold_at == 0.3
    path.write_text("[order]\nhold_at = 'broken'\n")
    os.utime(path, (2, 2))
    assert policy.current().hold_at == 0.3  # broken file reported, previous policy stays


def test_missing_policy_file_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        PolicyFile(tmp_path / "absent.toml")


def test_session_signals_are_exactly_the_signals_of_the_session_group():
    """The halt exemption sums these: a signal of another group among them would let a
    session with that evidence count as unclean, or the reverse."""
    from tradeguard.policy.config import SIGNAL_GROUPS
    groups = {name: sig.group for name, sig in CFG.signals.items()}
    assert set(groups.values()) == set(SIGNAL_GROUPS)  # every group is represented
    assert CFG.session_signals == {n for n, g in groups.items() if g == "session"}
    assert CFG.session_signals and CFG.session_signals != set(groups)

