"""One reason rule on both paths: the live decision path (``ReasonsEncoder``, JSON per distinct
reason set) names the same signals, with the same values, as ``OrderVerdicts.reasons`` (login
step-ups, the policy's own tests) for the same verdicts.

They once kept a floor each (0.01 live, 0.05 in the policy), so a signal that added 0.03 was a
reason on a published decision and not on a step-up or in the policy's tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradeguard.core.blocks import ReasonsEncoder
from tradeguard.policy.orders import MIN_REASON_RISK, OrderVerdicts

pytestmark = pytest.mark.quick

SIGNALS = ("new_device", "new_ip", "new_asn", "failed_logins_before", "liquidation_ratio",
           "thin_ticker_notional_x_adv")
# Contributions around the floor (just under, at, just over, between the two old floors) and
# repeated ones, so ties and near-floor signals are common; values with more than 4 decimals.
contribution = st.one_of(
    st.sampled_from([0.0, MIN_REASON_RISK / 2, MIN_REASON_RISK, 0.03, 0.05, 1.5, 3.0]),
    st.floats(0, 4))
value = st.one_of(st.sampled_from([0.0, 1.0, 0.93]), st.floats(-1e6, 1e6))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
           arrays(np.float64, (n, len(SIGNALS)), elements=contribution),
           arrays(np.float64, (n, len(SIGNALS)), elements=value))),
       st.integers(1, len(SIGNALS) + 1))  # the policy file's max_reasons is at least 1
def test_the_live_encoder_and_the_policy_give_the_same_reasons(batch, limit):
    contributions, values = batch
    verdicts = OrderVerdicts(np.zeros(len(contributions)), contributions, values, SIGNALS)
    encoder = ReasonsEncoder()
    live = [ReasonsEncoder.decode(r) for r in encoder.encode(verdicts, limit)]
    assert live == verdicts.all_reasons(limit)
    assert live == [verdicts.reasons(i, limit) for i in range(len(contributions))]
    # a second batch hits the encoder's memo of reason sets: the same answer
    assert [ReasonsEncoder.decode(r) for r in encoder.encode(verdicts, limit)] == live


def test_a_signal_between_the_old_floors_is_a_reason_on_both_paths():
    verdicts = OrderVerdicts(np.zeros(1), np.array([[0.03, 0.0, 2.0, 0, 0, 0]]),
                             np.array([[1.0, 0.0, 1.0, 0, 0, 0]]), SIGNALS)
    expected = [{"code": "new_asn", "value": 1.0}, {"code": "new_device", "value": 1.0}]
    assert verdicts.reasons(0, 4) == expected
    assert ReasonsEncoder.decode(ReasonsEncoder().encode(verdicts, 4)[0]) == expected
