"""A login of an account that passes a second factor waits for it before a step-up: a stuffed
password stopped by the broker's own factor bothers no one; a relayed code, or an order with
no factor asked, raises the step-up then; whatever the batching (issue 23, false account
actions on cold-start: the MFA-blocked logins of a credential-stuffing run)."""

from __future__ import annotations

import random

import pytest

from tradeguard.core import ControlBoard, typed
from tradeguard.core.accounts import AccountCore
from tradeguard.policy.config import PolicyConfig
from tests.core.test_login_step_up import HOME, MIN, STRANGER, T0, auth, order, run


def story(*after, factor=True, seen=True):
    """Known at home for a day (``seen``), where each login passes a second factor (``factor``);
    then three failures and a right password from a stranger's server abroad, and what
    ``after`` says."""
    history = [auth("login_success", T0 - 24 * 60 * MIN, HOME, session="s-0"),
               order("home-old", T0 - 24 * 60 * MIN + 1000, HOME, "s-0")]
    if not seen:
        history = []
    elif factor:
        history.append(auth("mfa_challenge_passed", T0 - 24 * 60 * MIN + 500, HOME, session="s-0"))
    return sorted([*history,
                   *(auth("login_failure", T0 - 30_000 + k, STRANGER, session=None)
                     for k in range(3)),
                   auth("login_success", T0, STRANGER),
                   *after], key=lambda r: r[1]["ts"] if isinstance(r[1], dict) else r[1].ts)


FAILED = auth("mfa_challenge_failed", T0 + 10_000, STRANGER)
PASSED = auth("mfa_challenge_passed", T0 + 10_000, STRANGER)


def test_a_login_stopped_by_its_own_factor_raises_nothing():
    _, controls = run(story(FAILED))
    assert controls == []


def test_a_relayed_code_raises_the_step_up_when_it_passes():
    decisions, controls = run(story(PASSED, order("first", T0 + MIN, STRANGER, "s-1")))
    assert [(c["action"], c["ts"]) for c in controls][:1] == [("step_up", T0 + 10_000)]
    assert controls[0]["evidence"]["login"]["session_id"] == "s-1"
    assert controls[0]["evidence"]["answer_by"] == T0 + 10_000 + 600_000
    assert decisions["first"]["action"] in ("hold", "block")


def test_an_order_with_no_factor_asked_raises_it_at_the_order():
    decisions, controls = run(story(order("first", T0 + MIN, STRANGER, "s-1")))
    assert [(c["action"], c["ts"]) for c in controls][:1] == [("step_up", T0 + MIN)]
    assert decisions["first"]["action"] in ("hold", "block")


def test_an_account_with_no_factor_on_record_is_stepped_up_at_the_login():
    _, controls = run(story(FAILED, factor=False))
    assert [(c["action"], c["ts"]) for c in controls] == [("step_up", T0), ("release", T0 + 10_000)]


@pytest.mark.parametrize("after", [
    (FAILED,),
    (PASSED, order("first", T0 + MIN, STRANGER, "s-1")),
    (order("first", T0 + 5_000, STRANGER, "s-1"), PASSED),  # the order before the pass
])
def test_the_wait_does_not_depend_on_the_batching(after):
    records = story(*after)
    whole = run(records)
    rnd = random.Random(5)
    for _ in range(6):
        sizes = iter(lambda: rnd.randint(1, 3), None)
        assert run(records, batch_size=sizes) == whole


def test_a_waiting_step_up_survives_a_snapshot():
    """Parked at the login in one call, restored from a snapshot, raised at the relayed code."""
    records = story(PASSED)
    board = ControlBoard()
    core = AccountCore()
    cfg = PolicyConfig.defaults()
    before = [(t, typed(t, r)) for t, r in records if r["ts"] <= T0]
    out = core.process([r for t, r in before if t == "auth.events"],
                       [r for t, r in before if t == "orders"], [], board, cfg)
    assert out.account_controls == [] and "acct-1" in core._awaiting_factor
    core = AccountCore.from_bytes(core.to_bytes(), core.profiles, core.infra)
    out = core.process([typed(*PASSED)], [], [], board, cfg)
    assert [(c["action"], c["ts"]) for c in out.account_controls] == [("step_up", T0 + 10_000)]


def test_a_first_login_waits_a_while_for_a_factor_the_engine_cannot_know_of():
    """Never seen before the stranger's login: a failed factor drops the step-up; with no
    answer it is raised once the policy's wait is over (60 s), with no order needed."""
    _, controls = run(story(FAILED, seen=False))
    assert controls == []
    later = auth("logout", T0 + 2 * MIN, STRANGER)
    _, controls = run(story(later, seen=False))
    assert [(c["action"], c["ts"]) for c in controls] == [("step_up", T0 + 60_000)]
    assert controls[0]["evidence"]["answer_by"] == T0 + 60_000 + 600_000


def test_a_forged_factor_failure_suppresses_nothing():
    """An outsider who can write auth.events sends the failure the identity system did not:
    unsigned (the Kafka edge's ``attest_answers`` marks it not authoritative), it must not
    drop the waiting step-up, which the relayed code that follows then raises. The identity
    system's own (signed) failure does drop it, and the pass after raises nothing. Break:
    ``settle_awaited`` taking any failure: the forged case raises nothing."""
    from streams.signing import Attested

    name, record = FAILED
    relayed = auth("mfa_challenge_passed", T0 + 20_000, STRANGER)
    forged = (name, Attested(typed(name, record), authoritative=False))
    _, controls = run(story(forged, relayed))
    assert [(c["action"], c["ts"]) for c in controls][:1] == [("step_up", T0 + 20_000)]
    signed = (name, Attested(typed(name, record), authoritative=True))
    _, controls = run(story(signed, relayed))
    assert controls == []
