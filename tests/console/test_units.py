"""The console's pure parts: passwords, roles, sessions, CSRF, aggregation, action plans, pages."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.records import AUDIT
from tradeguard.console.access import ACTIONS, authorize, may_approve, rank
from tradeguard.console.config import ConsoleSettings
from tradeguard.console.operations import ActionError, Operator, Request, plan
from tradeguard.console.pages import Ctx, dashboard_body, svg_chart
from tradeguard.console.sessions import LoginThrottle, SessionStore, check_csrf
from tradeguard.console.users import (ROLES, ScryptParams, UserStore, UserStoreError,
                                      hash_password, verify_password)
from tradeguard.console.view import ConsoleView, DecisionFilter, ViewLimits
from tradeguard.runtime.settings import SettingsError

TINY = ScryptParams(n=4, r=1, p=1)  # properties, not strength, are under test here


# --- passwords and the user store ---------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_hash_verifies_its_own_password_and_no_other(password, other):
    encoded = hash_password(password, TINY)
    assert verify_password(password, encoded)
    assert verify_password(other, encoded) == (other == password)
    assert hash_password(password, TINY) != encoded  # a fresh salt every time


def test_default_cost_is_the_owasp_scrypt_setting():
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("scrypt$n=32768,r=8,p=3$")
    assert verify_password("correct horse battery", encoded)


@pytest.mark.parametrize("bad, message", [
    ("bcrypt$x$y$z", "unknown scheme 'bcrypt'"),
    ("scrypt$n=3,r=8,p=1$AAAA$AAAA", "n must be a power of two"),
    ("scrypt$n=16,r=8$AAAA$AAAA", "'p'"),
    ("scrypt$n=16,r=8,p=1$!!$AAAA", "scrypt$n=..,r=..,p=..$salt$key"),
])
def test_malformed_hashes_are_named(bad, message):
    with pytest.raises(UserStoreError, match=message.replace("$", r"\$").replace(".", r"\.")):
        verify_password("x", bad)


def test_user_store_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "users"
    store = UserStore(path)
    store.add("alice", "supervisor", "pw-1", params=TINY)
    store.add("bob", "analyst", "pw-2", params=TINY)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = UserStore(path)
    assert again.authenticate("alice", "pw-1").role == "supervisor"
    assert again.authenticate("alice", "pw-2") is None
    assert again.authenticate("nobody", "pw-1") is None
    with pytest.raises(UserStoreError, match="exists; pass --update"):
        again.add("bob", "viewer", "x", params=TINY)
    again.add("bob", "viewer", "pw-3", update=True, params=TINY)
    assert store.get("bob").role == "viewer"  # the first store sees the file change
    with pytest.raises(UserStoreError, match="role must be one of"):
        store.add("carol", "admin", "x", params=TINY)
    with pytest.raises(UserStoreError, match="user name 'c:d'"):
        store.add("c:d", "viewer", "x", params=TINY)

    path.write_text(path.read_text() + "carol:viewer\n")
    with pytest.raises(UserStoreError, match=r"users:4: expected name:role:hash"):
        UserStore(path)
    path.write_text("eve:root:" + hash_password("x", TINY) + "\n")
    with pytest.raises(UserStoreError, match=r"users:1: role must be one of"):
        UserStore(path)
    os.chmod(path, 0o620)
    with pytest.raises(UserStoreError, match="writable by group or others: chmod 600"):
        UserStore(path)


# --- roles -------------------------------------------------------------------------------------

CONTROL = st.sampled_from([None, {"action": "halt_buys"}, {"action": "release"},
                           {"action": "step_up"}, {"action": "freeze"}])


@given(st.sampled_from((None, *ROLES)), st.sampled_from(ACTIONS), CONTROL,
       st.sampled_from((None, "fraud", "legit")), st.booleans())
def test_who_may_do_what(role, action, state, label, two_person):
    label = label if action == "label_order" else None
    p = authorize(role, action, state, label=label, two_person=two_person)
    if role in (None, "viewer"):
        assert p.verdict == "deny"
    elif role == "supervisor":
        assert p.verdict == "allow"
    else:  # analyst
        reopens = (action == "release_halt"
                   or (action == "release_account" and state == {"action": "freeze"})
                   or (label == "legit" and state == {"action": "freeze"}))
        assert p.verdict == ("allow" if not reopens else
                             "propose" if two_person and label is None else "deny"), p
    assert p.reason


@given(st.sampled_from((None, *ROLES)), st.text(min_size=1, max_size=8),
       st.text(min_size=1, max_size=8))
def test_nobody_approves_their_own_proposal(role, user, proposer):
    p = may_approve(role, user, proposer)
    assert p.allowed == (role in ("analyst", "supervisor") and user != proposer)


def test_ranks_count_trust_from_one_for_a_viewer():
    # rank is exported with these numbers in its docstring; the callers here only compare
    # ranks, but a caller elsewhere may store or compare against the number itself.
    assert [rank(r) for r in (None, "root", *ROLES)] == [0, 0, 1, 2, 3]


# --- sessions, CSRF and the login brake ----------------------------------------------------------

@given(st.floats(0, 10_000), st.floats(0, 10_000))
def test_sessions_expire_when_idle_or_old(idle_after, second_after):
    store = SessionStore(idle_s=100, absolute_s=1_000)
    s = store.open("u", "analyst", "local", now=0.0)
    got = store.get(s.sid, now=idle_after)
    assert (got is s) == (idle_after <= 100)
    if got is not None:
        later = idle_after + second_after
        assert (store.get(s.sid, later) is s) == (second_after <= 100 and later <= 1_000)


def test_each_login_gets_a_new_session_and_csrf_token():
    store = SessionStore()
    a, b = store.open(None, None, None, 0.0), store.open("u", "viewer", "local", 0.0)
    assert a.sid != b.sid and a.csrf != b.csrf and len(a.csrf) >= 40
    assert check_csrf(b, b.csrf) and not check_csrf(b, a.csrf)
    assert not check_csrf(b, "") and not check_csrf(None, b.csrf)
    bounded = SessionStore(max_sessions=3)
    for _ in range(10):
        bounded.open(None, None, None, 0.0)
    assert len(bounded) == 3


def test_a_session_keeps_its_last_five_flashes_until_shown():
    # Messages pile up while an operator acts without loading a page; the page then shows
    # the newest five (an older one is dropped unseen), once.
    s = SessionStore().open("u", "analyst", "local", 0.0)
    for n in range(7):
        s.flash("ok", f"action {n}")
    assert s.take_flashes() == [("ok", f"action {n}") for n in range(2, 7)]
    assert s.take_flashes() == []


@given(st.lists(st.tuples(st.sampled_from(["sue", "bob"]), st.sampled_from(["a", "b", "c"]),
                          st.floats(0, 1)), max_size=40),
       st.sampled_from(["sue", "bob"]), st.booleans())
def test_throttle_never_refuses_a_source_that_has_not_failed(attempts, name, logged_in):
    """However many wrong passwords strangers send for any name, a source with no failure
    of its own gets its attempt checked: no lockout by name alone (issue 21)."""
    throttle = LoginThrottle(limit=3, window_s=600, backoff_s=30, per_source=6, per_name=4)
    now = 0.0
    for user, source, step in attempts:
        now += step
        throttle.begin(user, source, now)  # every one a failure: never succeeded
    assert throttle.begin(name, "supervisor-desk", now, logged_in=logged_in) is None


@given(st.integers(3, 12), st.floats(0, 50))
def test_throttle_backs_off_exponentially_per_name_and_source(failures, later):
    throttle = LoginThrottle(limit=3, window_s=600, backoff_s=10, per_source=100, per_name=100)
    allowed = [throttle.begin("sue", "x", 0.0) is None for _ in range(failures)]
    assert allowed == [True] * 3 + [False] * (failures - 3)  # all at once: the limit holds
    wait = min(10 * 2 ** 0, 600)  # three failures counted: the first back-off step
    assert (throttle.begin("sue", "x", later) is None) == (later >= wait)


@given(st.integers(2, 8), st.integers(1, 40))
def test_a_right_password_among_concurrent_guesses_does_not_reopen_the_limit(limit, waiting):
    """Attempts begun together are checked at most ``limit`` times, even when one of the
    checked ones is right: its success forgets nothing while the pair's other attempts are
    still being checked (CI once saw 6 of 50 parallel logins checked with a limit of 5)."""
    throttle = LoginThrottle(limit=limit, window_s=600, backoff_s=30, per_source=100,
                             per_name=100)
    checked = [i for i in range(limit) if throttle.begin("ana", "x", 0.0) is None]
    assert len(checked) == limit
    throttle.succeeded("ana", "x")  # one of them was right; the others are in flight
    later = [throttle.begin("ana", "x", 0.0) is None for _ in range(waiting)]
    assert not any(later)
    for _ in range(limit - 1):
        throttle.failed("ana", "x")


def test_a_success_alone_still_forgets_the_pairs_earlier_failures():
    throttle = LoginThrottle(limit=3, window_s=600, backoff_s=30, per_source=100, per_name=100)
    for _ in range(2):  # two mistypes, answered one after the other
        assert throttle.begin("ana", "x", 0.0) is None
        throttle.failed("ana", "x")
    assert throttle.begin("ana", "x", 1.0) is None
    throttle.succeeded("ana", "x")
    assert [throttle.begin("ana", "x", 2.0) is None for _ in range(3)] == [True] * 3


# --- aggregation, held to a naive twin -------------------------------------------------------------

DECISION = st.fixed_dictionaries({
    "order_id": st.sampled_from([f"o{i}" for i in range(30)]),
    "account_id": st.sampled_from(["a1", "a2", "a3"]),
    "ticker": st.sampled_from(["T1", "T2"]),
    "side": st.sampled_from(["buy", "sell"]),
    "action": st.sampled_from(["allow", "allow", "hold", "block"]),
    "score": st.floats(0, 1),
    "reasons": st.lists(st.fixed_dictionaries({"code": st.sampled_from(["new_device", "x"]),
                                               "value": st.floats(0, 1)}), max_size=2),
    "model_version": st.just("m"), "order_ts": st.integers(0, 10**6), "ts": st.just(0)})
FILTER = st.builds(DecisionFilter, action=st.sampled_from(["", "allow", "hold", "block"]),
                   reason=st.sampled_from(["", "new_device"]), ticker=st.sampled_from(["", "T1"]),
                   account=st.sampled_from(["", "a2"]))


@settings(max_examples=200)
@given(st.lists(DECISION, max_size=80), FILTER, st.integers(1, 12))
def test_live_stream_and_counters_equal_a_naive_fold(decisions, flt, limit):
    limits = ViewLimits(decisions=20, alerts=10)
    view = ConsoleView(limits)
    for d in decisions:
        view.absorb("decisions", d, now_ms=5_000)
    firsts, seen = [], set()  # a redelivered order (same id) counts once
    for d in decisions:
        if d["order_id"] not in seen:
            seen.add(d["order_id"])
            firsts.append(d)
    pool = ([d for d in firsts if d["action"] != "allow"][-limits.alerts:]
            if flt.action in ("hold", "block") else firsts[-limits.decisions:])
    expected = [d for d in reversed(pool) if flt.matches(d)][:limit]
    assert view.decisions(flt, limit) == expected
    counts = Counter(d["action"] for d in firsts)
    assert view.summary(now_ms=5_000)["actions"] == {a: counts[a] for a in
                                                     ("allow", "hold", "block")}
    assert view.summary(now_ms=6_000)["rate"] == pytest.approx(len(firsts) / 10)
    assert len(view.recent) <= limits.decisions and len(view.alert_queue) <= limits.alerts


def test_logins_show_what_is_new_for_the_account():
    view = ConsoleView()
    login = {"account_id": "a", "event": "login_success", "session_id": "s", "ip": "1.1.1.1",
             "device_id": "pc", "user_agent": "ua", "country": "JP", "asn": 1, "ts": 1}
    view.absorb("auth.events", login, 0)
    view.absorb("auth.events", {**login, "event": "login_failure", "device_id": "vm",
                                "country": "VN"}, 0)
    view.absorb("auth.events", {**login, "device_id": "vm", "country": "VN", "ts": 2}, 0)
    newest, failed, first = view.account("a")["logins"]
    assert first["new"] == dict.fromkeys(("device", "ip", "network", "country", "agent"))
    assert failed["new"]["device"] and failed["new"]["country"] and not failed["new"]["ip"]
    # a failed attempt does not make its device familiar; only a successful login does
    assert newest["new"]["device"] and newest["new"]["country"]


def test_memory_stays_bounded_at_any_volume():
    limits = ViewLimits(decisions=50, alerts=20, orders=100, accounts=30, tickers=10,
                        buckets_per_ticker=5)
    view = ConsoleView(limits, bucket_ms=1_000)
    for i in range(5_000):
        order = {"order_id": f"o{i}", "account_id": f"a{i % 97}", "ticker": f"T{i % 13}",
                 "side": "buy", "qty": 100, "price": 10.0, "margin": False, "session_id": None,
                 "ts": i * 100}
        view.absorb("orders", order, 0)
        view.absorb("market.trades", {"ticker": order["ticker"], "price": 10.0, "qty": 1,
                                      "ts": i * 100}, 0)
    assert (len(view.orders), len(view.accounts), len(view.tickers)) == (100, 30, 10)
    assert all(len(t.buckets) <= 5 for t in view.tickers.values())


# --- action plans -------------------------------------------------------------------------------

def _view_with_controls() -> ConsoleView:
    view = ConsoleView()
    view.absorb("controls.tickers", {"ticker": "T", "action": "halt_buys", "reason": "r",
                                     "evidence": {"accounts": ["a"]}, "expires_at": 10**13,
                                     "source": "engine", "ts": 1}, 0)
    view.absorb("controls.accounts", {"account_id": "a", "action": "freeze", "reason": "r",
                                      "evidence": None, "source": "engine", "ts": 1}, 0)
    view.absorb("orders", {"order_id": "o", "account_id": "a", "ticker": "T", "side": "buy",
                           "qty": 1, "price": 1.0, "margin": False, "session_id": None,
                           "ts": 1}, 0)
    return view


@settings(max_examples=150)
@given(st.sampled_from(ROLES), st.sampled_from(ACTIONS), st.sampled_from(["now", "propose"]),
       st.sampled_from(["fraud", "legit"]))
def test_plans_write_only_what_was_permitted_and_always_audit(role, action, mode, label):
    view = _view_with_controls()
    target = {"release_halt": "T", "extend_halt": "T", "label_order": "o"}.get(action, "a")
    req = Request(action, target, "a good reason", mode=mode, label=label, minutes=5)
    p = plan(view, Operator("op", role, "local", "127.0.0.1"), req, now_ms=10**12)
    AUDIT.validate(p.audit)
    assert p.audit["actor"] == "op" and p.audit["actor_role"] == role
    assert bool(p.writes) == (p.outcome == "done")
    for _, record in p.writes:
        assert record["source"] == "console:op"
        assert record.get("evidence", {"operator": {"user": "op"}})["operator"]["user"] == "op"
    if role == "viewer":
        assert p.outcome == "denied"
    if p.outcome == "proposed":
        assert role in ("analyst", "supervisor") and p.audit["proposal_id"]


@pytest.mark.parametrize("form, message", [
    (dict(action="drop_table", target="T", reason="why not"), "action: must be one of"),
    (dict(action="release_halt", target="T", reason="no"), "reason: say why in 3 to 2000"),
    (dict(action="release_halt", target="", reason="fine reason"), "target: must be 1-256"),
    (dict(action="extend_halt", target="T", reason="fine reason", minutes=0), "minutes: must"),
    (dict(action="label_order", target="o", reason="fine reason", label="maybe"), "label: must"),
    (dict(action="release_halt", target="T", reason="fine reason", mode="approve"),
     "proposal_id: required"),
])
def test_malformed_requests_name_the_field(form, message):
    with pytest.raises(ActionError, match=message):
        plan(ConsoleView(), Operator("op", "supervisor", "local"), Request(**form), now_ms=1)


# --- pages ---------------------------------------------------------------------------------------

@given(st.lists(st.tuples(st.integers(0, 10**12), st.one_of(st.none(), st.floats(-1e9, 1e9))),
                max_size=30).map(lambda ps: sorted(ps, key=lambda p: p[0])), st.booleans())
def test_charts_draw_any_series(points, bars):
    svg = svg_chart(points, title="<t>", bars=bars)
    assert "<t>" not in svg and "nan" not in svg.lower()


def test_record_values_are_escaped_in_pages():
    view = ConsoleView()
    view.absorb("controls.tickers", {"ticker": "<script>x</script>", "action": "halt_buys",
                                     "reason": "<img src=x onerror=alert(1)>", "evidence": None,
                                     "expires_at": None, "source": "engine", "ts": 1, "seq": 1}, 0)
    html = dashboard_body(Ctx(view, 2, {"user": "u", "role": "viewer"}, "t", {}, True, 1))
    assert "<script>x" not in html and "<img src=x" not in html
    assert "&lt;script&gt;x" in html


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, message", [
    ({"TRADEGUARD_CONSOLE_HOST": "0.0.0.0"}, "is not loopback: session cookies are Secure"),
    ({"TRADEGUARD_CONSOLE_TWO_PERSON": "maybe"}, "TRADEGUARD_CONSOLE_TWO_PERSON='maybe'"),
    ({"TRADEGUARD_CONSOLE_TLS_CERT": "c.pem"}, "go together"),
    ({"TRADEGUARD_CONSOLE_OIDC_ISSUER": "https://idp"}, "OIDC_CLIENT_ID must be set"),
    ({"TRADEGUARD_CONSOLE_OIDC_ISSUER": "http://idp.example", "TRADEGUARD_CONSOLE_OIDC_CLIENT_ID":
      "c", "TRADEGUARD_CONSOLE_OIDC_CLIENT_SECRET": "s", "TRADEGUARD_CONSOLE_OIDC_ROLE_MAP":
      "g=analyst", "TRADEGUARD_CONSOLE_OIDC_REDIRECT_URL": "https://c/oidc/callback"},
     "OIDC_ISSUER must be an https:// URL"),
    ({"TRADEGUARD_CONSOLE_OIDC_ISSUER": "https://idp.example", "TRADEGUARD_CONSOLE_OIDC_CLIENT_ID":
      "c", "TRADEGUARD_CONSOLE_OIDC_CLIENT_SECRET": "s", "TRADEGUARD_CONSOLE_OIDC_ROLE_MAP":
      "g=admin", "TRADEGUARD_CONSOLE_OIDC_REDIRECT_URL": "https://c/oidc/callback"},
     "'g=admin' is not group=ROLE"),
])
def test_bad_console_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        ConsoleSettings.from_env(env)


def test_behind_a_tls_proxy_any_address_is_fine():
    cfg = ConsoleSettings.from_env({"TRADEGUARD_CONSOLE_HOST": "0.0.0.0",
                                    "TRADEGUARD_CONSOLE_BEHIND_TLS_PROXY": "1"})
    assert cfg.behind_tls_proxy and cfg.two_person
