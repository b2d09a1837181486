"""Campaign signal: attacker infrastructure shared across accounts.

A campaign logs many hijacked accounts in from the same few IPs and devices
(BRIEF.md). Those accounts live on different partitions, so no account-keyed
worker sees the sharing: every worker instead reads all of ``auth.events``
(logins are few next to orders) into this index, and the account side asks it,
per order, how many distinct accounts used the IP or device of the account's
latest login within the hour before the order.

The answer depends only on which logins exist at or before the order's own
time, not on the order they arrived in nor on logins that came later: logins of
different accounts come from different partitions, in no particular order, and
a restarted worker replaying an old order already holds logins from after it.

An IP links accounts only through *suspect* logins: a failed attempt, or a device
the account had not used before. Many honest customers share a mobile carrier's
NAT address, each on their own usual phone: they are not linked. A device links
every account that used it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from typing import Any

__all__ = ["InfrastructureWatch"]

_LOGINS = ("login_success", "login_failure", "session_start")
KEEP_LOGINS = 32  # per account: enough to find the login before an order replayed after a restart
KEEP_ACCOUNTS = 32  # per IP or device: counts saturate there
KEEP_TIMES = 8  # login times per (IP or device, account): the latest few

class InfrastructureWatch:
    """Accounts per login IP and device over time, and each account's recent logins.

    >>> from types import SimpleNamespace as Login
    >>> watch = InfrastructureWatch()
    >>> watch.observe([Login(account_id=a, event=e, ip="198.51.100.7", device_id=f"dev-{a}", ts=t)
    ...                for t, (a, e) in enumerate([("a", "login_success"), ("b", "login_failure"),
    ...                                            ("c", "login_failure")])])
    >>> watch.shared_accounts("a", at_ms=10), watch.shared_accounts("a", at_ms=0)
    (3, 1)
    >>> watch.shared_accounts("z", at_ms=10)
    0
    """

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_ms = int(window_s * 1000)
        # ("ip" | "device", value) -> {account: its latest login times there, sorted}.
        # IPs and devices only: a big ISP's ASN is shared by everybody.
        self._users: dict[tuple[str, str], dict[str, list[int]]] = {}
        # account -> its last logins as (ts, ip, device, failed, asn) ("" / -1 if absent),
        # oldest first
        self._logins: dict[str, list[tuple[int, str, str, int, int]]] = {}
        # account -> ASN -> the earliest successful login from it: whether a login's network
        # is new to the account, whatever order the logins arrived in.
        self._first_on_asn: dict[str, dict[int, int]] = {}
        # Keys more than one account used, and the accounts whose latest login used none of
        # them (-> that login's ts): the usual case, answered with one dictionary lookup.
        self._shared: set[tuple[str, str]] = set()
        self._alone: dict[str, int] = {}

    def observe(self, events: list[Any]) -> None:
        """Index the login attempts among ``events`` (typed auth.events records).

        Idempotent: a login seen twice (from its own partition and again from the
        replicated reader) is indexed once.
        """
        for e in events:
            if e.event not in _LOGINS:
                continue
            account, ts = e.account_id, e.ts
            ip, device = e.ip, e.device_id
            asn = -1 if getattr(e, "asn", None) is None else int(e.asn)
            login = (ts, ip or "", device or "", int(e.event == "login_failure"), asn)
            history = self._logins.setdefault(account, [])
            if login in history:
                continue
            if not login[3] and asn >= 0:
                first = self._first_on_asn.setdefault(account, {})
                first[asn] = min(first.get(asn, ts), ts)
            history.append(login)
            history.sort()  # the full tuple: two logins in the same ms tie-break alike
            del history[:-KEEP_LOGINS]
            for key in (("ip", ip), ("device", device)):
                if key[1]:
                    self._seen(key, account, ts)
            self._refresh(account)

    def _seen(self, key: tuple[str, str], account: str, ts: int) -> None:
        users = self._users.setdefault(key, {})
        times = users.setdefault(account, [])
        insort(times, ts)
        del times[:-KEEP_TIMES]
        if len(users) > KEEP_ACCOUNTS:  # forget the account seen longest ago
            del users[min(users, key=lambda a: (users[a][-1], a))]
        if len(users) > 1 and key not in self._shared:
            self._shared.add(key)
            for other in users:  # their latest logins may have used it
                self._alone.pop(other, None)

    def _refresh(self, account: str) -> None:
        last = next((l for l in reversed(self._logins[account]) if not l[3]), None)
        if last is None or ("ip", last[1]) in self._shared or ("device", last[2]) in self._shared:
            self._alone.pop(account, None)
        else:
            self._alone[account] = last[0]

    def shared_accounts_many(self, accounts: list[str], at_ms: list[int]) -> list[int]:
        """``shared_accounts`` for each (account, time), with a fast path for the usual case.

        Most orders come from an account whose latest login's IP and device no other
        account has used: that answer (1) needs no scan of who used them when.
        """
        alone, logins, one = self._alone, self._logins, self.shared_accounts
        out = []
        for account, t in zip(accounts, at_ms):
            since = alone.get(account)
            if since is not None and since <= t:
                out.append(1)
            elif account in logins:
                out.append(one(account, t))
            else:
                out.append(0)
        return out

    def shared_accounts(self, account_id: str, at_ms: int) -> int:
        """1 + the other accounts that logged in from the IP or device of ``account_id``'s
        latest successful login before ``at_ms``, within the hour up to ``at_ms``; 0 if no
        successful login is known."""
        # The session behind the account's orders is its latest successful login: failed
        # attempts on it (credential stuffing from a bot's IP) are others' evidence, not where
        # the customer is.
        login = next((l for l in reversed(self._logins.get(account_id, ()))
                      if l[0] <= at_ms and not l[3]), None)
        if login is None:
            return 0
        since = at_ms - self.window_ms
        others = [0]
        for key in (("ip", login[1]), ("device", login[2])):
            users = self._users.get(key, {})
            near = [account for account, times in users.items()
                    if account != account_id and _any_within(times, since, at_ms)]
            if key[0] == "ip":
                near = [a for a in near if self._suspect_on_ip(a, key[1], since, at_ms)]
            others.append(len(near))
        return 1 + max(others)

    def _suspect_on_ip(self, account: str, ip: str, since: int, until: int) -> bool:
        """Whether ``account`` logged in from ``ip`` within [since, until] suspectly: a failed
        attempt, or from a device its earlier (known) logins never used."""
        history = self._logins.get(account, ())
        for i, (ts, at_ip, device, failed, _) in enumerate(history):
            if at_ip != ip or not since <= ts <= until:
                continue
            if failed:
                return True
            earlier = {d for t, _, d, f, _ in history[:i] if t < ts and not f}
            if earlier and device and device not in earlier:
                return True
        return False


    def new_hosting_logins_many(self, accounts: list[str], at_ms: list[int],
                                hosting: frozenset) -> list[float]:
        """Per (account, time): 1.0 when the account's latest successful login at or before
        the time came from an ASN in ``hosting`` that none of its earlier successful logins
        came from, else 0.0 (also with no login known, or an empty ``hosting``)."""
        if not hosting:
            return [0.0] * len(accounts)
        logins, first_on = self._logins, self._first_on_asn
        out = []
        for account, t in zip(accounts, at_ms):
            login = next((l for l in reversed(logins.get(account, ()))
                          if l[0] <= t and not l[3]), None)
            new = (login is not None and login[4] in hosting
                   and first_on[account].get(login[4]) == login[0])
            out.append(1.0 if new else 0.0)
        return out


def _any_within(times: list[int], since: int, until: int) -> bool:
    """Whether a sorted list holds a time in [since, until]."""
    return bisect_right(times, until) > bisect_left(times, since)
