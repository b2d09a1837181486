"""Idle accounts leave the hot arrays and come back unchanged (issue 22, item 5).

A core that evicts accounts idle past a short horizon must decide every order exactly as
one that never evicts: same action, score, reasons and features, order by order, also
across a snapshot restore in the middle. And the hot arrays must stop growing: accounts
active once and then idle past the horizon leave them, and new accounts reuse their ids.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeguard.core import ControlBoard, typed
from tradeguard.core.accounts import SWEEPS_PER_HORIZON, AccountCore
from tradeguard.policy.config import PolicyConfig

pytestmark = pytest.mark.quick  # pure: no broker

T0 = 1_760_000_000_000
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
HORIZON_S = 1.5 * 86400  # just past the 1-day session TTL: the shortest a core accepts
CFG = PolicyConfig.defaults()
PLACES = [{"ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "UA home",
           "country": "JP", "asn": 2516},
          {"ip": "198.51.100.66", "device_id": "dev-evil", "user_agent": "UA evil",
           "country": "VN", "asn": 64500},
          {"ip": "192.0.2.7", "device_id": "dev-phone", "user_agent": "UA phone",
           "country": "JP", "asn": 4713}]
TICKERS = ["7203", "4592", "9984"]


def login(account: str, ts: int, place: int, session: str, failed: bool = False):
    return "auth.events", {"account_id": account, "session_id": session, "ts": ts,
                           "event": "login_failure" if failed else "login_success",
                           **PLACES[place]}


def order(account: str, ts: int, place: int, session: str, n: int, side: str, ticker: int):
    where = PLACES[place]
    return "orders", {"order_id": f"o-{n}", "account_id": account, "ticker": TICKERS[ticker],
                      "side": side, "qty": 100 * (1 + n % 7), "price": 2_500.0, "margin": n % 5 == 0,
                      "session_id": session, "ip": where["ip"], "device_id": where["device_id"],
                      "user_agent": where["user_agent"], "holdings_value": 1e6, "ts": ts}


def label(account: str, ts: int, n: int, fraud: bool):
    return "feedback", {"account_id": account, "order_id": f"o-{n - 1}" if n else None,
                        "label": "fraud" if fraud else "legit", "source": "analyst", "ts": ts}


# One step: a gap of event time (minutes to weeks), then a login, a failed login, an
# order or a label for one of five accounts (a later one may take an evicted one's id).
STEP = st.tuples(st.sampled_from([MIN, 20 * MIN, 5 * HOUR, DAY + HOUR, 3 * DAY, 20 * DAY]),
                 st.sampled_from(["login", "failure", "order", "order", "label"]),
                 st.integers(0, 4), st.integers(0, 2), st.integers(0, 2), st.booleans())


def stream(steps) -> list[tuple[str, dict]]:
    out, ts = [], T0
    for n, (gap, kind, account, place, ticker, flag) in enumerate(steps):
        ts += gap
        acct, session = f"acct-{account}", f"s-{account}-{place}"
        if kind in ("login", "failure"):
            out.append(login(acct, ts, place, session, failed=kind == "failure"))
        elif kind == "order":
            out.append(order(acct, ts, place, session, n, "buy" if flag else "sell", ticker))
        else:
            out.append(label(acct, ts, n, fraud=flag))
    return out


def feed(core: AccountCore, board: ControlBoard, name: str, record: dict):
    """One record through the core: (decisions, features, controls) as comparable values."""
    return feed_many(core, board, [(name, record)])


def feed_many(core: AccountCore, board: ControlBoard, records: list[tuple[str, dict]]):
    """Records through the core in one call: (decisions, features, controls)."""
    by_topic = {"auth.events": [], "orders": [], "feedback": []}
    for name, record in records:
        by_topic[name].append(typed(name, record))
    out = core.process(by_topic["auth.events"], by_topic["orders"], by_topic["feedback"],
                       board, CFG)
    decisions = [(d["order_id"], d["action"], d["score"], d["reasons"])
                 for d in out.decisions.rows()]
    features = [f.tolist() for _, _, f, _, _ in core._last]
    return decisions, features, out.account_controls


def run_both(records, restart_at: int | None = None):
    """Each record through a core that never evicts and one that evicts; the evicting one
    restored from its snapshot before record ``restart_at``. Returns both runs' outputs and
    how many accounts the evicting core had readmitted from its cold tier."""
    keep, evict = AccountCore(idle_horizon_s=0), AccountCore(idle_horizon_s=HORIZON_S)
    keep_board, evict_board = ControlBoard(), ControlBoard()
    kept, evicted, readmitted = [], [], 0
    for i, (name, record) in enumerate(records):
        if i == restart_at:  # what the partitions share is not in the snapshot: kept
            evict = AccountCore.from_bytes(evict.to_bytes(), evict.profiles, evict.infra)
        readmitted += name != "feedback" and record["account_id"] in evict.features._cold
        kept.append(feed(keep, keep_board, name, record))
        evicted.append(feed(evict, evict_board, name, record))
    return kept, evicted, readmitted, evict


def test_an_account_back_after_weeks_is_decided_as_if_it_had_never_left():
    """The customer's own device, known before the account went cold, reads as known when it
    comes back: the readmitted Bloom filter and row are the ones that were packed."""
    records = [login("acct-1", T0, 0, "s-a"), order("acct-1", T0 + MIN, 0, "s-a", 0, "buy", 0),
               login("acct-2", T0 + 10 * DAY, 1, "s-b"),  # moves event time past the horizon
               login("acct-1", T0 + 20 * DAY, 0, "s-c"),
               order("acct-1", T0 + 20 * DAY + MIN, 0, "s-c", 1, "buy", 0)]
    kept, evicted, readmitted, core = run_both(records)
    assert readmitted == 1  # acct-1 went cold and came back
    assert evicted == kept
    back = dict(zip(("new_device", "usual_device", "first_buy_of_ticker"),
                    (kept[-1][1][0][0][k] for k in (1, 19, 11))))
    assert back == {"new_device": 0.0, "usual_device": 1.0, "first_buy_of_ticker": 0.0}


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=2, max_size=30), st.data())
def test_evicting_idle_accounts_changes_no_decision_nor_feature(steps, data):
    records = stream(steps)
    restart_at = data.draw(st.one_of(st.none(), st.integers(0, len(records) - 1)))
    kept, evicted, _, _ = run_both(records, restart_at)
    for i, (k, e) in enumerate(zip(kept, evicted)):
        assert e == k, f"record {i} {records[i]}"


def test_the_property_above_exercises_readmission():
    """Guards the property against a stream where nothing ever goes cold."""
    steps = [(DAY + HOUR, "login", 0, 0, 0, False), (MIN, "order", 0, 0, 1, True),
             (3 * DAY, "order", 1, 1, 2, True), (20 * DAY, "order", 0, 2, 1, True),
             (MIN, "label", 0, 0, 0, True)]
    kept, evicted, readmitted, _ = run_both(stream(steps), restart_at=3)
    assert readmitted == 1 and evicted == kept


def test_hot_rows_drop_to_the_active_set_and_new_accounts_reuse_their_ids():
    core, board = AccountCore(idle_horizon_s=HORIZON_S), ControlBoard()
    n = 300
    for i in range(n):
        feed(core, board, *login(f"a-{i}", T0 + i * 1000, i % 3, f"s-{i}"))
        feed(core, board, *order(f"a-{i}", T0 + i * 1000 + 500, i % 3, f"s-{i}", i, "buy", 0))
    features = core.features
    span, capacity = features.ids.span, features._accounts.shape[0]
    assert (features.hot_accounts, span) == (n, n)
    # Event time moves past the horizon and one sweep period more: one account is active.
    period_ms = int(HORIZON_S * 1000) // SWEEPS_PER_HORIZON
    late = T0 + n * 1000 + int(HORIZON_S * 1000) + 2 * period_ms
    feed(core, board, *login("newcomer-0", late, 0, "s-new-0"))
    assert (features.hot_accounts, features.cold_accounts) == (1, n)
    assert features.cold_bytes < n * features.bytes_per_account
    # New accounts take the freed ids: the id space and the arrays do not grow (the first
    # newcomer took a new id: it came in the call whose end swept the others out). A freed
    # row carries nothing of its last account: a newcomer's features are a fresh core's.
    fresh = AccountCore(idle_horizon_s=0)
    for i in range(1, n):
        # What a dirty row would show: a device or a ticker its last account used, as known.
        t, who, session = late + 10 * i, f"newcomer-{i}", f"s-new-{i}"
        calls = [login(who, t, 2, f"{session}-0"), login(who, t + 1, 1, session),
                 order(who, t + 2, 1, session, 2 * i, "buy", 1),
                 order(who, t + 3, 1, session, 2 * i + 1, "buy", 0)]
        assert feed_many(core, board, calls)[1] == feed_many(fresh, ControlBoard(), calls)[1]
    assert (features.hot_accounts, features.ids.span, features._accounts.shape[0]) == (
        n, span + 1, capacity)
    taken = sorted(features.ids.get(f"newcomer-{i}") for i in range(1, n))
    assert taken == list(range(n - 1))


def test_a_large_sweep_goes_on_over_several_calls(monkeypatch):
    """A call evicts EVICTIONS_PER_CALL accounts at most; the sweep resumes on the next call,
    after a restore too."""
    monkeypatch.setattr("tradeguard.core.accounts.EVICTIONS_PER_CALL", 40)
    core, board = AccountCore(idle_horizon_s=HORIZON_S), ControlBoard()
    for i in range(100):
        feed(core, board, *login(f"a-{i}", T0 + i, 0, f"s-{i}"))
    late = T0 + 2 * int(HORIZON_S * 1000)
    hot = []
    for k in range(4):
        feed(core, board, *login("active", late + k, 0, "s-active"))
        hot.append(core.features.hot_accounts)
        core = AccountCore.from_bytes(core.to_bytes(), core.profiles, core.infra)
    assert hot == [101 - 40, 101 - 80, 1, 1]


def test_an_account_with_a_step_up_outstanding_stays_hot():
    """Its challenge lives in AccountCore, not in the cold record: it must not leave."""
    core = AccountCore(idle_horizon_s=HORIZON_S)
    core._challenges["acct-1"] = (T0, T0 + 10 * MIN)
    core._login_challenges["acct-2"] = "s-2"
    accounts = ("acct-1", "acct-2", "acct-3")
    core.features.transform_orders(core.order_batch(
        [typed(*order(a, T0, 0, "s", n, "buy", 0)) for n, a in enumerate(accounts)]))
    core._sweep_idle(T0 + 3 * DAY)
    assert {core.features.ids.key_of(i) for i in range(3)} == {"acct-1", "acct-2", None}


def test_the_horizon_must_outlast_the_session_ttl():
    """A freed id reused while the evicted account's session is still open could read it."""
    with pytest.raises(ValueError, match="idle_horizon_s: 3600.0 must be 0 .never evict. or "
                                         "above the session TTL"):
        AccountCore(idle_horizon_s=3600.0)
    assert AccountCore(idle_horizon_s=0).idle_horizon_s == 0
