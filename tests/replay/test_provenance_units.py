"""The pieces of provenance, without a broker: what a step released, the wait bound, superseding.

- ``PartitionState.release`` holds records back for a lagging sibling topic at most
  ``wait_s``, and ``take_released`` reports, per topic, the one contiguous [first, end)
  span of offsets released since the last call, whatever the poll and release pattern.
- ``provenance.superseded`` names the steps a later restore redid.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings, strategies as st

from agents.state import PartitionState
from tradeguard.replay.provenance import superseded


def _login(ts: int) -> SimpleNamespace:
    return SimpleNamespace(ts=ts, account_id="a", event="login_success", ip="1.2.3.4",
                           device_id="d", country="JP", asn=1, user_agent="ua",
                           session_id="s")


def _state() -> PartitionState:
    # release() only moves records; the core is never called here.
    return PartitionState(core=None)  # type: ignore[arg-type]


def test_a_lagging_sibling_holds_records_back_at_most_the_bound():
    state = _state()
    state.stash("orders", [_login(100), _login(200)], [7, 8], 9)
    state.stash("auth.events", [_login(150)], [3], 4)
    lagging = {("auth.events", 0)}
    first = state.release(lagging, 0, now=0.0, wait_s=0.005)
    # Up to the latest login received (150): the order at 100 and the login go, 200 waits.
    assert [r.ts for r in first.orders] == [100] and [r.ts for r in first.auth] == [150]
    assert state.take_released() == {"orders": [7, 8], "auth.events": [3, 4]}
    assert state.release(lagging, 0, now=0.004, wait_s=0.005) is None  # within the bound
    last = state.release(lagging, 0, now=0.010, wait_s=0.005)  # past it: decided now
    assert [r.ts for r in last.orders] == [200]
    assert state.take_released() == {"orders": [8, 9]}
    assert state.take_released() == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.integers(0, 3)), min_size=1,
                max_size=30))
def test_released_spans_are_contiguous_and_cover_every_record_once(script):
    """Polls of 1-4 records, a sibling lagging or not, the clock moving: the spans released
    between two ``take_released`` calls tile the offsets released, in order, no gap."""
    state = _state()
    offset, ts, now = 0, 0, 0.0
    released, spans = [], []
    for n, lag, dt in script:
        records = [_login(ts + i) for i in range(n)]
        state.stash("orders", records, list(range(offset, offset + n)), offset + n)
        offset, ts, now = offset + n, ts + n, now + dt * 0.003
        state.stash("auth.events", [_login(ts - n)], [ts], ts + 1)  # a login per poll
        out = state.release({("auth.events", 0)} if lag else set(), 0, now, wait_s=0.005)
        if out is not None:
            released += [r.ts for r in out.orders]
        span = state.take_released().get("orders")
        if span:
            spans.append(span)
    out = state.release(set(), 0, now + 1, wait_s=0.005)  # the end: nothing lags
    if out is not None:
        released += [r.ts for r in out.orders]
    span = state.take_released().get("orders")
    if span:
        spans.append(span)
    assert released == list(range(offset))  # every order once, in offset order
    assert spans[0][0] == 0 and spans[-1][1] == offset
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def _step(worker, n, released, restored=None):
    return {"worker": worker, "step": n, "released": released, "seen": {}, "ts": n,
            "restored": restored}


def test_work_a_restore_redid_is_superseded_and_nothing_else():
    steps = [
        _step("x", 1, {"0": {"orders": [0, 5]}, "1": {"orders": [0, 3]}}),
        _step("x", 2, {"0": {"orders": [5, 9]}}),  # past what x committed for 0: redone
        _step("y", 1, {"0": {"orders": [5, 9]}}, restored={"0": {"to": {"orders": 5}}}),
    ]
    assert superseded(steps) == {("x", 2, 0)}
    # A clean handover (committed up to where x stopped) supersedes nothing.
    steps[2]["restored"] = {"0": {"to": {"orders": 9}}}
    assert superseded(steps) == set()
    # A snapshot written before its step's commit landed: the restorer resumed from the
    # snapshot (9), past the committed offset (5), so nothing of x's was redone.
    steps[2]["restored"] = {"0": {"from": {"orders": 9}, "to": {"orders": 5}}}
    assert superseded(steps) == set()


def test_a_restore_sees_the_controls_the_live_board_had_before_its_reader_read_them():
    """CI caught this on Apache Kafka: step 1 (before the snapshot) raised a step-up on an
    account, which the live board held at once; step 2, inside the restore's window, decided
    the account's next order under it, before the worker's reader had read the step-up back.
    A restore that rebuilt the board only from ``seen`` decided that order afresh, raising a
    second challenge with a later deadline, and the successor's decisions then differed from
    the replay's. The step record names the controls it issued; the restore applies them."""
    decided, refused = _replay_with_a_recorded_step_up(signed=True)
    codes = [r["code"] for r in decided["reasons"]]
    assert decided["action"] == "hold" and "account_step_up" in codes, decided
    assert refused == 0


def test_a_forged_control_in_a_step_record_never_reaches_the_board():
    """``engine.steps`` is not a control topic: an attacker who can write to it could name a
    freeze or a step-up there. Unsigned, or signed with a key the engine does not hold, the
    recorded control changes nothing: the order is decided as if it were absent."""
    from streams.signing import ControlKeys
    baseline = _replay_with_a_recorded_step_up(signed=None)[0]
    assert baseline["action"] == "allow", baseline
    for forged in (False, ControlKeys((b"an attacker's own key 0123456789",)), "altered"):
        decided, refused = _replay_with_a_recorded_step_up(signed=forged)
        assert decided == baseline and refused == 1, decided


def _replay_with_a_recorded_step_up(signed):
    """One order replayed after a step that recorded a step-up on its account: ``signed``
    True (the engine's key), False (unsigned), a ControlKeys (another key), "altered" (the
    engine's signature, then made a freeze) or None (no control recorded at all). Returns (the decision, controls refused)."""
    from streams.signing import ControlKeys, sign
    from tradeguard.core import PartitionCore, Shared, typed
    from tradeguard.policy.config import PolicyConfig
    from tradeguard.replay.provenance import StepReplay
    from tradeguard.runtime.settings import Settings

    t0 = 1_760_000_000_000
    order = typed("orders", {"order_id": "o-2", "account_id": "acct-1", "ticker": "7203",
                             "side": "sell", "qty": 100, "price": 2500.0, "margin": False,
                             "session_id": "s-1", "ts": t0 + 5_000})
    step_up = {"account_id": "acct-1", "action": "step_up", "reason": "login scored 0.99",
               "evidence": {"order_id": None, "answer_by": t0 + 600_000}, "source": "engine",
               "ts": t0, "expires_at": None, "seq": 1}
    settings = Settings()
    if signed is True:
        step_up = sign(step_up, ControlKeys.from_settings(settings))
    elif isinstance(signed, ControlKeys):
        step_up = sign(step_up, signed)
    elif signed == "altered":  # the engine's signature, on a record changed after signing
        step_up = {**sign(step_up, ControlKeys.from_settings(settings)), "action": "freeze"}
    steps = [
        # Before the snapshot: its login is in the snapshot's core, its step-up only here.
        {"worker": "w1", "step": 1, "released": {"0": {"auth.events": [0, 1]}}, "seen": {},
         "ts": 0, "profiles": [],
         **({} if signed is None else {"controls": {"0": {"accounts": [step_up]}}})},
        {"worker": "w1", "step": 2, "released": {"0": {"orders": [0, 1]}}, "seen": {},
         "ts": 1, "profiles": []},
    ]
    run = StepReplay(settings, PolicyConfig.defaults(), {("orders", 0): {0: order}}, {}, set(),
                     only={0}, cores={0: PartitionCore(Shared(), "JP", 250)},
                     bounds={0: {"orders": (0, 1), "auth.events": (1, 1)}})
    run.run(steps)
    (decided,) = run.decided.values()
    return decided, run.refused_controls
