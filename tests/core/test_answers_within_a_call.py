"""An answer to a step-up splits the account side's call only where it can act (most are a
login's own factor, with nothing to answer): a call holding the login, its answer and other
accounts' records gives the decisions and controls, in order, of one record per call."""

from __future__ import annotations

import pytest

from tests.core.test_login_step_up import HOME, MIN, STRANGER, T0
from tradeguard.core import InProcessEngine

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

DAY = 24 * 60 * MIN


def auth(account: str, event: str, ts: int, where: dict, session: str | None = "s-1"):
    return ("auth.events", {"account_id": account, "event": event, "session_id": session,
                            **where, "ts": ts})


def takeover(account: str, ts: int) -> list[tuple[str, dict]]:
    """Known at home for a day; two failed attempts, then a stranger's login (stepped up)."""
    return [auth(account, "login_success", ts - DAY, HOME, session="s-0"),
            *(auth(account, "login_failure", ts - 30_000 + k, STRANGER, session=None)
              for k in range(2)),
            auth(account, "login_success", ts, STRANGER)]


def run(records, batch_size=2048):
    engine = InProcessEngine()
    decisions, controls = {}, []
    for out in engine.run(sorted(records, key=lambda r: r[1]["ts"]), batch_size=batch_size):
        decisions.update({d["order_id"]: d for d in out.decisions.rows()})
        controls += out.account_controls
    return decisions, controls


def actions(controls):
    return [(c["account_id"], c["action"]) for c in controls]


@pytest.mark.parametrize("answer, session, expected", [
    ("mfa_challenge_passed", "s-1", []),  # the login's own factor: not an answer
    ("mfa_challenge_failed", "s-1", ["release"]),  # the session never opened: withdrawn
    ("mfa_challenge_passed", None, ["release"]),  # answered out of band
    ("mfa_challenge_failed", None, ["freeze"]),
])
def test_an_answer_in_the_call_of_the_login_it_answers(answer, session, expected):
    """The login and its answer, 20 s apart, in one call with no order of the account."""
    records = takeover("acct-1", T0) + [auth("acct-1", answer, T0 + 20_000, STRANGER, session)]
    whole = run(records)
    assert actions(whole[1]) == [("acct-1", a) for a in ("step_up", *expected)]
    assert run(records, batch_size=1) == whole


def one_call(records):
    """Every record in one call of the core, as ``tradeguard replay`` feeds it large batches
    (``InProcessEngine.run`` would cut at each minute)."""
    out = InProcessEngine().process(sorted(records, key=lambda r: r[1]["ts"]))
    return {d["order_id"]: d for d in out.decisions.rows()}, out.account_controls


def test_a_deadline_passed_by_an_answer_freezes_before_the_controls_after_it():
    """acct-1 is stepped up and its deadline passes; acct-9 logs in with its own factor just
    after, before acct-1's partition-mate acct-13 is stepped up (a partition's core keeps its
    own challenges): the freeze is published first, in one call as one record per call."""
    deadline = T0 + 10 * MIN
    records = [*takeover("acct-1", T0),
               auth("acct-9", "login_success", deadline + 1000, HOME),
               auth("acct-9", "mfa_challenge_passed", deadline + 2000, HOME),
               *takeover("acct-13", deadline + 5000)]
    single = run(records, batch_size=1)
    assert actions(single[1]) == [("acct-1", "step_up"), ("acct-1", "freeze"),
                                  ("acct-13", "step_up")]
    assert one_call(records) == single
    assert run(records) == single
