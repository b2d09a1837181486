"""Strangers (issue 23): failed logins before a login count from a device the account does not
use, and repeated failures more than one (the owner mistypes on their own device; a guessed or
stuffed password is tried from the attacker's); a never-seen account's first login from abroad
weighs what a known account's new country and network do."""

from __future__ import annotations

import numpy as np
import pytest

from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

CFG = PolicyConfig.defaults()
NAMES = ("failed_logins_before", "usual_device")


def evidence(failures: float, usual_device: float) -> float:
    v = score_orders(np.array([[failures, usual_device]]), NAMES, CFG)
    return float(v.contributions[0, v.signal_names.index("failed_logins_before")])


@pytest.mark.parametrize("failures, expected", [(0, 0.0), (1, 0.8), (2, 2.4), (3, 4.0), (6, 4.0)])
def test_from_a_device_the_account_does_not_use_repeated_failures_weigh_more(failures, expected):
    assert evidence(failures, 0.0) == pytest.approx(expected)


@pytest.mark.parametrize("failures", [1, 3])
def test_on_the_customers_own_device_failures_add_nothing(failures):
    assert evidence(failures, 1.0) == 0.0


def test_a_strangers_first_login_after_three_failures_from_a_hosting_network_abroad_is_stepped_up():
    """A never-seen account (nothing usual): three failures in the minute before (decayed to
    2.9), a first login from abroad, from a hosting network: over the step-up line on the
    login's session evidence alone (it was 0.49 with 2.5 for three failures); the same login
    with one failure (a mistype) stays under it."""
    names = ("failed_logins_before", "usual_device", "foreign_first_login", "unknown_account",
             "hosting_network")
    x = np.array([[2.9, 0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0, 1.0]])
    scores = score_orders(x, names, CFG).scores
    assert scores[0] >= CFG.step_up_at > scores[1]


def test_a_first_login_from_abroad_weighs_a_known_accounts_new_country_and_network():
    names = ("foreign_first_login", "new_country", "new_asn", "usual_device")
    v = score_orders(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]), names, CFG)
    assert v.contributions[0].sum() == pytest.approx(v.contributions[1].sum()) == 3.0
