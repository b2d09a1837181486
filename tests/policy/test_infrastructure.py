from hypothesis import given, settings
from hypothesis import strategies as st

from types import SimpleNamespace

from tradeguard.core.infrastructure import InfrastructureWatch

HOUR = 3_600_000


def login(account, ts, ip="203.0.113.1", device=None, event="login_success", asn=None):
    return SimpleNamespace(account_id=account, event=event, ip=ip,
                           device_id=device or f"d-{account}", ts=ts, asn=asn)


HOSTING = frozenset({16509, 9009})


def test_a_login_from_a_hosting_network_the_account_never_used_is_new_hosting():
    """a: a stranger from a VPN exit; bot: a customer's program on a cloud server it has used
    for days; c: at home; d: failed attempts from the server first do not make it its own."""
    watch = InfrastructureWatch()
    watch.observe([login("a", 10, asn=9009),
                   login("bot", -48 * HOUR, asn=16509), login("bot", 10, asn=16509),
                   login("c", 10, asn=2516),
                   login("d", -HOUR, asn=2516), login("d", 5, asn=16509, event="login_failure"),
                   login("d", 10, asn=16509)])
    accounts = ["a", "bot", "c", "d", "a", "nobody"]
    times = [20, 20, 20, 20, 5, 20]  # a at 5: before its login, nothing known
    assert watch.new_hosting_logins_many(accounts, times, HOSTING) == [1, 0, 0, 1, 0, 0]
    assert watch.new_hosting_logins_many(accounts, times, frozenset()) == [0] * 6


def _in_order_and_shuffled(records: list, rnd) -> tuple[InfrastructureWatch, InfrastructureWatch]:
    """Two watches: one fed ``records`` in one call, the other one at a time, shuffled."""
    shuffled = records[:]
    rnd.shuffle(shuffled)
    one, other = InfrastructureWatch(), InfrastructureWatch()
    one.observe(records)
    for r in shuffled:
        other.observe([r])
    return one, other


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 4 * HOUR),
                          st.sampled_from([16509, 2516, None]),
                          st.sampled_from(["login_success", "login_failure"])), max_size=20),
       st.randoms(use_true_random=False), st.integers(0, 4 * HOUR))
def test_new_hosting_does_not_depend_on_the_order_logins_arrive_in(events, rnd, at):
    one, other = _in_order_and_shuffled(
        [login(a, t, event=e, asn=asn) for a, t, asn, e in events], rnd)
    assert (one.new_hosting_logins_many(list("abc"), [at] * 3, HOSTING)
            == other.new_hosting_logins_many(list("abc"), [at] * 3, HOSTING))


def test_accounts_sharing_a_device_or_suspectly_an_ip_are_counted():
    """b comes to a's IP on a device b never used: suspect, so a counts b. a's own login there
    is its first (nothing to be new against): b does not count a. c uses a's device."""
    watch = InfrastructureWatch()
    watch.observe([login("b", -5 * HOUR, ip="192.0.2.1"),
                   login("a", 0, ip="198.51.100.9"), login("b", 10, ip="198.51.100.9", device="d-new"),
                   login("c", 20, ip="10.1.1.1", device="d-a"), login("d", 30, ip="10.2.2.2")])
    assert [watch.shared_accounts(a, 100) for a in "abcd"] == [2, 1, 2, 1]


def test_a_carrier_nat_does_not_link_customers_on_their_own_phones():
    watch = InfrastructureWatch()
    nat = "100.64.0.1"
    watch.observe([login(a, -HOUR * 24, ip=f"100.64.1.{i}") for i, a in enumerate("abcdef")])
    watch.observe([login(a, i, ip=nat) for i, a in enumerate("abcdef")])
    assert [watch.shared_accounts(a, 100) for a in "abcdef"] == [1] * 6
    # ...but a stranger's attempts from it link whoever else comes there
    watch.observe([login("a", 50, ip=nat, event="login_failure", device="bot")])
    assert watch.shared_accounts("b", 100) == 2


def test_failed_attempts_count_and_other_events_do_not():
    watch = InfrastructureWatch()
    watch.observe([login("a", 0, event="login_failure"), login("b", 1, event="password_change"),
                   login("c", 2)])
    assert watch.shared_accounts("c", 5) == 2 and watch.shared_accounts("b", 5) == 0


def test_only_the_hour_before_the_order_counts_and_the_login_before_it_is_used():
    watch = InfrastructureWatch()
    watch.observe([login("a", 0, event="login_failure"), login("b", 1)])
    assert watch.shared_accounts("b", 10) == 2
    assert watch.shared_accounts("b", 2 * HOUR) == 1  # a's login is out of the window
    watch.observe([login("b", 3 * HOUR, ip="10.9.9.9")])
    assert watch.shared_accounts("b", 3 * HOUR + 1) == 1 and watch.shared_accounts("b", 10) == 2
    assert watch.shared_accounts("b", -1) == 0


logins = st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3 * HOUR),
                            st.sampled_from(["198.51.100.1", "198.51.100.2", "10.0.0.1"]),
                            st.sampled_from(["login_success", "login_failure"]),
                            st.sampled_from([None, "d-shared", "d-other"])),
                  max_size=30)


@settings(max_examples=150, deadline=None)
@given(logins, st.randoms(use_true_random=False), st.integers(0, 4 * HOUR))
def test_the_answer_does_not_depend_on_the_order_logins_arrive_in(events, rnd, at):
    one, other = _in_order_and_shuffled(
        [login(a, t, ip=ip, event=e, device=d) for a, t, ip, e, d in events], rnd)
    assert ([one.shared_accounts(a, at) for a in "abcdef"]
            == [other.shared_accounts(a, at) for a in "abcdef"])


@settings(max_examples=300, deadline=None)
@given(logins, st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(-1, 4 * HOUR)),
                        max_size=20))
def test_the_batch_answer_equals_the_one_by_one_answer(events, orders):
    """shared_accounts_many has a fast path for unshared logins; it must not change an answer."""
    watch = InfrastructureWatch()
    watch.observe([login(a, t, ip=ip, event=e, device=d) for a, t, ip, e, d in events])
    accounts, times = [a for a, _ in orders], [t for _, t in orders]
    assert watch.shared_accounts_many(accounts, times) == [
        watch.shared_accounts(a, t) for a, t in orders]


@settings(max_examples=200, deadline=None)
@given(logins, st.integers(0, 4 * HOUR), st.integers(1, 3 * HOUR))
def test_logins_after_the_order_do_not_change_its_answer(events, at, later_by):
    """A restored worker replays old orders with later logins already indexed: same answer."""
    records = [login(a, t, ip=ip, event=e, device=d) for a, t, ip, e, d in events]
    then, now = InfrastructureWatch(), InfrastructureWatch()
    then.observe([r for r in records if r.ts <= at])
    later = {a: ip for a, _, ip, _, _ in events}  # one later login per account, within KEEP_LOGINS
    now.observe(records + [login(a, at + later_by, ip=ip) for a, ip in later.items()])
    assert ([then.shared_accounts(a, at) for a in "abcdef"]
            == [now.shared_accounts(a, at) for a in "abcdef"])


def test_failed_attempts_on_an_account_do_not_move_its_session_to_the_bots_ip():
    """Credential stuffing tries many accounts from one IP: the owners, logged in from home,
    are not linked through it; whoever *succeeds* from that IP is."""
    watch = InfrastructureWatch()
    watch.observe([login(a, 0, ip=f"192.0.2.{i}") for i, a in enumerate("abc")])
    watch.observe([login(a, 10 + i, ip="203.0.113.99", device="bot", event="login_failure")
                   for i, a in enumerate("abc")])
    assert [watch.shared_accounts(a, 100) for a in "abc"] == [1, 1, 1]
    watch.observe([login("c", 50, ip="203.0.113.99", device="bot")])  # c entered
    assert watch.shared_accounts("c", 100) == 3
