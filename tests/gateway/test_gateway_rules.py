"""The gateway's rules without Kafka: who decides, which action, and correlation by order_id."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from tradeguard.core.board import ControlBoard
from tradeguard.gateway.decision import (ACTIONS, FAIL_MODES, Verdict, control_answer,
                                         control_verdict, engine_answer, fallback, severity)
from tradeguard.gateway.ledger import Ledger, OrderInFlight

ORDER = {"order_id": "o-1", "account_id": "a-1", "ticker": "9999", "side": "buy"}
actions = st.sampled_from(ACTIONS)
verdicts = st.one_of(st.none(), st.builds(
    lambda a, code: Verdict(a, ({"code": code, "value": 1.0},)),
    st.sampled_from(("hold", "block")),
    st.sampled_from(("ticker_halted", "account_frozen", "account_step_up"))))


def engine_record(action: str, **extra) -> dict:
    return {**ORDER, "action": action, "score": 0.5, "reasons": [{"code": "new_device",
            "value": 1.0}], "model_version": "m1", "order_ts": 1, "ts": 2, **extra}


@given(actions, verdicts)
def test_the_stricter_of_engine_and_controls_wins_and_says_who_decided(action, verdict):
    record = engine_record(action, policy_version="sha256:abc", future_field=[1, 2])
    d = engine_answer(ORDER, record, verdict, elapsed_ms=3.0)
    stricter = verdict is not None and severity(verdict.action) > severity(action)
    assert d.action == (verdict.action if stricter else action)
    assert d.decided_by == ("gateway" if stricter else "engine")
    assert d.fallback is None and not d.review
    # every field the engine sent is kept, including ones the client does not know
    assert d.engine is record and d.policy_version == "sha256:abc"
    logged = d.as_dict()
    assert logged["future_field"] == [1, 2] and logged["decided_by"] == d.decided_by
    assert ("engine_action" in logged) == stricter
    assert list(d.reasons[-1:]) == record["reasons"]


def test_a_buy_the_engine_let_through_a_halt_is_not_blocked_for_that_halt_alone():
    exempt = engine_record("allow", reasons=[{"code": "halt_exempt", "value": 1.0}])
    halt = Verdict("block", ({"code": "ticker_halted", "value": 1.0},))
    assert engine_answer(ORDER, exempt, halt, elapsed_ms=1.0).action == "allow"
    # ...but a halt the engine did not weigh, or an account control, still blocks
    assert engine_answer(ORDER, engine_record("allow"), halt, elapsed_ms=1.0).action == "block"
    frozen = Verdict("block", ({"code": "ticker_halted", "value": 1.0},
                               {"code": "account_frozen", "value": 1.0}))
    assert engine_answer(ORDER, exempt, frozen, elapsed_ms=1.0).action == "block"


@given(st.sampled_from(sorted(FAIL_MODES)), verdicts, st.integers(1, 10_000))
def test_a_fallback_is_the_modes_action_unless_a_control_is_stricter(mode, verdict, deadline):
    d = fallback(ORDER, mode, deadline, verdict, elapsed_ms=deadline + 0.1)
    expected = max(FAIL_MODES[mode], verdict.action if verdict else "allow", key=severity)
    assert d.action == expected
    assert d.decided_by == "gateway" and d.fallback == mode and d.engine is None
    assert {"code": "engine_timeout", "value": float(deadline)} in d.reasons
    assert d.review == (d.action == "allow")  # allowed unseen: review after the trade
    assert d.as_dict()["decided_by"] == "gateway" and d.score is None


def test_fail_open_allows_for_review_and_fail_closed_holds():
    assert fallback(ORDER, "fail_open", 20, None, 20.0).action == "allow"
    assert fallback(ORDER, "fail_open", 20, None, 20.0).review
    assert fallback(ORDER, "fail_closed", 20, None, 20.0).action == "hold"
    assert not fallback(ORDER, "fail_closed", 20, None, 20.0).review


def test_a_control_block_needs_no_engine():
    verdict = Verdict("block", ({"code": "account_frozen", "value": 1.0},))
    d = control_answer(ORDER, verdict, 0.1)
    assert (d.action, d.decided_by, d.fallback, d.review) == ("block", "gateway", None, False)


halts = st.dictionaries(st.sampled_from(("7203", "9999")),
                        st.one_of(st.none(), st.integers(0, 2_000)), max_size=2)
account_controls = st.dictionaries(st.sampled_from(("a-1", "a-2")),
                                   st.sampled_from(("step_up", "freeze", "release")), max_size=2)


@given(halts, account_controls, st.sampled_from(("a-1", "a-2")), st.sampled_from(("7203", "9999")),
       st.sampled_from(("buy", "sell")), st.integers(0, 2_000))
def test_control_verdict_matches_the_rules_stated_plainly(halts, accounts, account, ticker, side,
                                                          now):
    board = ControlBoard()
    for t, expires in halts.items():
        board.apply_ticker({"ticker": t, "action": "halt_buys", "expires_at": expires,
                            "reason": "", "ts": 0})
    for a, action in accounts.items():
        board.apply_account({"account_id": a, "action": action, "reason": "", "ts": 0})
    order = {"account_id": account, "ticker": ticker, "side": side}
    v = control_verdict(board, order, now)
    # the naive twin: each rule on its own, the strictest wins
    halted = side == "buy" and ticker in halts and (halts[ticker] is None or now < halts[ticker])
    control = accounts.get(account)
    wanted = {"freeze": "block", "step_up": "hold"}.get(control)
    if halted:
        wanted = "block"
    assert (v.action if v else None) == wanted
    if v is not None:
        codes = [r["code"] for r in v.reasons]
        assert ("ticker_halted" in codes) == halted
        first = {"freeze": "account_frozen", "step_up": "account_step_up"}.get(control)
        assert codes[0] == ("ticker_halted" if halted else first)


class LedgerMachine(RuleBasedStateMachine):
    """Any interleaving of submit, engine decision (repeated) and deadline gives each order one
    answer, matches each late decision once, and drops every repeat."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.ledger: Ledger[str] = Ledger(remember=10_000)
        self.slots: dict[str, object] = {}
        self.state: dict[str, str] = {}  # pending, answered, awaiting, reconciled
        self.n = 0

    @rule(target=orders)
    def submit(self):
        self.n += 1
        oid = f"o-{self.n}"
        self.slots[oid] = self.ledger.open(oid, wake=lambda: None)
        self.state[oid] = "pending"
        return oid

    @rule(oid=orders)
    def submit_again_is_refused(self, oid):
        with pytest.raises(OrderInFlight):
            self.ledger.open(oid, wake=lambda: None)

    @rule(oid=orders)
    def engine_decides(self, oid):
        got = self.ledger.deliver({"order_id": oid, "action": "allow"}).kind
        expected = {"pending": "answer", "awaiting": "late"}.get(self.state[oid], "duplicate")
        assert got == expected
        self.state[oid] = {"pending": "answered", "awaiting": "reconciled"}.get(
            self.state[oid], self.state[oid])

    @rule(oid=orders)
    def deadline(self, oid):
        if self.state[oid] not in ("pending", "answered"):
            return  # the submitter has already answered
        record = self.ledger.close(self.slots[oid], gateway_answer=f"fallback {oid}")
        assert (record is not None) == (self.state[oid] == "answered")
        self.state[oid] = "reconciled" if record is not None else "awaiting"

    @rule(oid=orders)
    def submitter_gives_up(self, oid):
        was_open = self.state[oid] in ("pending", "answered")
        assert self.ledger.abandon(self.slots[oid]) == was_open
        if was_open:
            self.state[oid] = "reconciled"  # nothing awaits: a decision now is a repeat

    @rule()
    def someone_elses_decision(self):
        other = {"order_id": "other-gateway", "action": "hold"}
        assert self.ledger.deliver(other).kind == "foreign"

    @invariant()
    def counts_agree(self):
        counts = self.ledger.counts()
        assert counts["pending"] == sum(s in ("pending", "answered") for s in self.state.values())
        assert counts["awaiting"] == sum(s == "awaiting" for s in self.state.values())


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


def test_answers_awaiting_the_engine_are_given_up_after_the_window_or_when_pushed_out():
    now = [0.0]
    ledger: Ledger[str] = Ledger(remember=2, reconcile_s=10, clock=lambda: now[0])
    for oid in ("a", "b", "c"):
        ledger.close(ledger.open(oid, wake=lambda: None), gateway_answer=oid)
    assert ledger.expire() == ["a"]  # pushed out by the third: reported, not dropped silently
    now[0] = 11
    assert ledger.expire() == ["b", "c"]
    assert ledger.deliver({"order_id": "b"}).kind == "duplicate"  # given up, still remembered


def test_a_record_for_our_order_that_breaks_the_contract_is_invalid_not_an_answer():
    ledger: Ledger[str] = Ledger()
    slot = ledger.open("o-1", wake=lambda: None)

    def check(record):
        raise ValueError("action: must be one of ['allow', 'hold', 'block']")

    got = ledger.deliver({"order_id": "o-1", "action": "maybe"}, check=check)
    assert got.kind == "invalid" and "action" in str(got.error)
    assert ledger.deliver({"order_id": "x", "action": "maybe"}, check=check).kind == "foreign"
    assert ledger.close(slot, gateway_answer="fallback") is None
