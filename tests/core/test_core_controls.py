"""Controls in the decision core, in process: halts in event time, labels, halt evidence, snapshots.

Written for behaviour the mutation run (``python -m benchmarks.mutation``) found no
test pinning: a clean buy after a halt has lapsed stays allowed, a label's verdict
decides release or freeze, a halt's evidence names only risky buyers, and a snapshot
of another format is refused.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from tradeguard.core import InProcessEngine, PartitionCore, Shared, typed
from tradeguard.core.blocks import FlowBlock, ReasonsEncoder
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

T0 = 1_760_000_000_000
CFG = PolicyConfig.defaults()


def login(account: str, ts: int) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0",
            "country": "JP", "asn": 2516, "ts": ts}


def order(oid: str, account: str, ticker: str, side: str, ts: int) -> dict:
    return {"order_id": oid, "account_id": account, "ticker": ticker, "side": side, "qty": 100,
            "price": 250.0, "margin": False, "session_id": f"s-{account}", "ts": ts}


def decide(engine: InProcessEngine, records: list[tuple[str, dict]]) -> dict[str, dict]:
    out = {}
    for o in engine.run(records):
        out.update({d["order_id"]: d for d in o.decisions.rows()})
    return out


def halted(source: str, lasts_ms: int, policy: PolicyConfig = CFG) -> InProcessEngine:
    """An engine whose board holds a halt of 4592 from T0, placed by ``source``."""
    engine = InProcessEngine(policy)
    engine.shared.board.apply_ticker({
        "ticker": "4592", "action": "halt_buys", "reason": source, "evidence": {},
        "expires_at": T0 + lasts_ms, "source": source, "ts": T0})
    return engine


def known_customer(account: str) -> list[tuple[str, dict]]:
    """Two logins from home: the second, from the same place, is a known customer's."""
    return [("auth.events", login(account, T0 - 7_200_000)),
            ("auth.events", login(account, T0 - 3_600_000))]


def test_a_halt_blocks_buys_while_in_force_and_never_sells_nor_later_buys():
    engine = halted("analyst", 60_000, dataclasses.replace(CFG, halt_spares_clean_sessions=False))
    got = decide(engine, [
        *known_customer("acct-1"),
        ("orders", order("during-buy", "acct-1", "4592", "buy", T0 + 1_000)),
        ("orders", order("during-sell", "acct-1", "4592", "sell", T0 + 2_000)),
        ("orders", order("after-buy", "acct-1", "4592", "buy", T0 + 61_000)),
    ])
    assert got["during-buy"]["action"] == "block"
    assert got["during-buy"]["reasons"][0] == {"code": "ticker_halted", "value": 1.0}
    for oid in ("during-sell", "after-buy"):  # a clean customer, nothing else in force
        codes = {r["code"] for r in got[oid]["reasons"]}
        assert got[oid]["action"] == "allow", got[oid]
        assert not codes & {"ticker_halted", "account_step_up", "account_frozen"}, got[oid]


@pytest.mark.parametrize("label, then", [("legit", "release"), ("fraud", "freeze")])
def test_a_label_on_an_account_under_step_up_releases_or_freezes_it(label, then):
    engine = InProcessEngine()
    engine.shared.board.apply_account({
        "account_id": "acct-1", "action": "step_up", "reason": "scored high", "evidence": {},
        "source": "engine", "ts": T0})
    controls = []
    for out in engine.run([("feedback", {"account_id": "acct-1", "order_id": None,
                                         "label": label, "source": "analyst-7",
                                         "ts": T0 + 1_000})]):
        controls += out.account_controls
    assert [(c["account_id"], c["action"], c["source"]) for c in controls] == [
        ("acct-1", then, "feedback")]
    assert controls[0]["reason"] == f"labelled {label} by analyst-7"


def test_a_halt_names_the_risky_buyers_as_evidence_not_risky_sellers():
    core = PartitionCore(Shared(), "JP", 250)
    n = 4
    flows = FlowBlock(ticker=["4592"] * n, account_id=["seller", "buyer-1", "buyer-2", "buyer-3"],
                      side=["sell", "buy", "buy", "buy"], order_id=[f"o{i}" for i in range(n)],
                      notional=np.full(n, 5e6), account_risk=np.full(n, 0.95),
                      ts=T0 + np.arange(n, dtype=np.int64) * 1_000)
    out = core.tickers.process([], flows, core.shared.board, CFG)
    (halt,) = [c for c in out.ticker_controls if c["action"] == "halt_buys"]
    assert "seller" not in halt["evidence"]["accounts"], halt["evidence"]
    assert set(halt["evidence"]["accounts"]) <= {"buyer-1", "buyer-2", "buyer-3"}


@pytest.mark.parametrize("fmt", [0, 2, None])
def test_a_snapshot_of_another_format_is_refused(fmt):
    good = pickle.loads(PartitionCore(Shared(), "JP", 250).to_bytes())
    blob = pickle.dumps({**good, "format": fmt})
    with pytest.raises(ValueError, match=f"partition snapshot format {fmt!r}, expected 1"):
        PartitionCore.from_bytes(blob, Shared())


def test_orders_with_no_policy_signal_get_empty_reasons():
    verdicts = score_orders(np.ones((3, 1)), ("not_a_signal",), CFG)
    assert ReasonsEncoder().encode(verdicts, 4) == [b"[]"] * 3


def test_a_poll_spanning_a_profile_period_publishes_what_a_cut_at_the_boundary_would():
    """The worker hands the ticker side whatever a poll held; the in-process engine cuts at
    each period boundary and closes the period. Both publish the same profiles."""
    period = 60_000
    start = (T0 // period + 1) * period
    trades = [typed("market.trades", {"ticker": t, "price": 250.0 + i, "qty": 100 * (i + 1),
                                      "ts": start + i * 7_000})
              for i, t in enumerate(["4592", "7203"] * 12)]  # 168 s: three periods
    board, empty = Shared().board, FlowBlock.empty()
    whole = PartitionCore(Shared(), "JP", 250).tickers
    got = whole.process(trades, empty, board, CFG).profiles
    cut = PartitionCore(Shared(), "JP", 250).tickers
    expected = []
    for p in sorted({t.ts // period for t in trades}):
        expected += cut.close_periods(p * period)
        expected += cut.process([t for t in trades if t.ts // period == p], empty, board,
                                CFG).profiles
    assert len(got) == 4 and got == expected  # two tickers, two periods ended


def test_a_label_naming_another_accounts_order_teaches_nothing():
    engine = InProcessEngine(partitions=1)
    accounts = engine.cores[0].accounts
    decide(engine, [("auth.events", login("acct-1", T0)),
                    ("orders", order("o-1", "acct-1", "7203", "buy", T0 + 1_000))])
    learned = accounts.classifier.n_learned
    label = {"order_id": "o-1", "label": "fraud", "source": "analyst-7", "ts": T0 + 2_000}
    list(engine.run([("feedback", {**label, "account_id": "acct-2"})]))
    assert accounts.classifier.n_learned == learned
    list(engine.run([("feedback", {**label, "account_id": "acct-1", "ts": T0 + 3_000})]))
    assert accounts.classifier.n_learned == learned + 1


def test_a_halt_sparing_clean_sessions_lets_the_customer_at_home_buy_and_blocks_a_stranger():
    assert CFG.halt_spares_clean_sessions
    engine = halted("engine", 600_000)
    stranger = {**login("acct-2", T0 - 60_000), "ip": "198.51.100.66", "device_id": "dev-evil",
                "session_id": "s-evil", "asn": 64500, "country": "VN"}
    got = decide(engine, [
        *known_customer("acct-1"),
        ("auth.events", login("acct-2", T0 - 7_200_000)),
        ("auth.events", stranger),
        ("orders", order("home-buy", "acct-1", "4592", "buy", T0 + 1_000)),
        ("orders", {**order("stranger-buy", "acct-2", "4592", "buy", T0 + 2_000),
                    "session_id": "s-evil"}),
    ])
    assert got["home-buy"]["action"] == "allow"
    assert got["home-buy"]["reasons"][0]["code"] == "halt_exempt"
    assert got["stranger-buy"]["action"] == "block"
    assert got["stranger-buy"]["reasons"][0]["code"] == "ticker_halted"


def test_a_halt_an_analyst_placed_spares_no_one():
    got = decide(halted("analyst", 600_000), [
        *known_customer("acct-1"), ("orders", order("home-buy", "acct-1", "4592", "buy", T0 + 1_000))])
    assert got["home-buy"]["action"] == "block"


def _risky_buys(accounts: list[str], risk: float = 0.95) -> FlowBlock:
    n = len(accounts)
    return FlowBlock(ticker=["4592"] * n, account_id=accounts, side=["buy"] * n,
                     order_id=[f"o{i}" for i in range(n)], notional=np.full(n, 5e6),
                     account_risk=np.full(n, risk),
                     ts=T0 + np.arange(n, dtype=np.int64) * 1_000)


@pytest.mark.parametrize("buyers, linked, halted_at", [
    (["a", "b"], False, None),      # two honest customers stepped up at once: a coincidence
    (["a", "b", "c"], False, "o2"),  # three are not
    (["a", "b"], True, "o1"),        # two sharing a device are a campaign
])
def test_two_risky_buyers_halt_only_when_linked_by_shared_infrastructure(buyers, linked,
                                                                          halted_at):
    from types import SimpleNamespace
    core = PartitionCore(Shared(), "JP", 250)
    core.shared.infra.observe([SimpleNamespace(
        account_id=a, event="login_success", ip=f"192.0.2.{i}",
        device_id="dev-shared" if linked else f"dev-{a}", ts=T0 - 60_000)
        for i, a in enumerate(buyers)])
    out = core.tickers.process([], _risky_buys(buyers), core.shared.board, CFG)
    halts = [c for c in out.ticker_controls if c["action"] == "halt_buys"]
    assert [h["evidence"]["trigger_order_id"] for h in halts] == ([halted_at] if halted_at else [])


def test_one_campaign_buy_halts_alone():
    core = PartitionCore(Shared(), "JP", 250)
    out = core.tickers.process([], _risky_buys(["a"], risk=1.0), core.shared.board, CFG)
    (halt,) = [c for c in out.ticker_controls if c["action"] == "halt_buys"]
    assert halt["evidence"]["campaign_buy"] and "campaign buy" in halt["reason"]


@pytest.mark.parametrize("fmt", [2, 3, 4, None])
def test_an_account_snapshot_of_an_older_format_is_refused(fmt):
    """Format 3 added the usual_device column (a format-2 core's models and remembered rows
    are 19 wide); format 4 the idle accounts' cold tier and its sweep clock; format 5 the
    thin-buy baseline as a usual share of a ticker's day. An older snapshot would be
    misread, so it is refused by name (warm afresh)."""
    from tradeguard.core.accounts import AccountCore
    good = pickle.loads(AccountCore().to_bytes())
    with pytest.raises(ValueError, match=f"account snapshot format {fmt!r}, expected 5"):
        AccountCore.from_bytes(pickle.dumps({**good, "format": fmt}))
    AccountCore.from_bytes(pickle.dumps(good))  # its own format restores


def test_flow_arriving_late_with_an_earlier_time_does_not_halt_a_halted_ticker_again():
    """Another worker's account side can publish flow behind this one: a campaign buy at
    T0+60 s halts 4592, then a risky buy stamped T0 arrives. The halt in force stands, alone:
    a second would name the ticker twice and replace the first with an earlier expiry (CI
    saw two halts of one ticker on two workers, on Apache Kafka)."""
    core = PartitionCore(Shared(), "JP", 250)
    board = core.shared.board
    first = _risky_buys(["a"], risk=1.0)
    first.ts[:] = T0 + 60_000
    out = core.tickers.process([], first, board, CFG)
    (halt,) = [c for c in out.ticker_controls if c["action"] == "halt_buys"]
    late = _risky_buys(["b"], risk=1.0)
    out = core.tickers.process([], late, board, CFG)
    assert [c for c in out.ticker_controls if c["action"] == "halt_buys"] == []
    assert board.ticker_halt("4592", T0 + 60_000)["expires_at"] == halt["expires_at"]
