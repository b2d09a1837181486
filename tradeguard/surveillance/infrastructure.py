"""Campaign signal: attacker infrastructure shared across accounts.

A campaign logs many hijacked accounts in from the same few IPs and devices
(BRIEF.md). Those accounts live on different partitions, so no account-keyed
worker sees the sharing: every worker instead reads all of ``auth.events``
(logins are few next to orders) into this index, and the account side asks it,
per order, how many distinct accounts used the IP or device of the account's
latest login within the hour before the order.

The answer depends only on which logins exist, not on the order they arrived
in: logins of different accounts come from different partitions, in no
particular order, and a restarted worker reads them back in yet another.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InfrastructureWatch"]

_LOGINS = ("login_success", "login_failure", "session_start")
KEEP_LOGINS = 4  # per account: enough to find the login before any order
KEEP_ACCOUNTS = 32  # per IP or device: counts saturate there


class InfrastructureWatch:
    """Accounts per login IP and device over time, and each account's recent logins.

    >>> watch = InfrastructureWatch()
    >>> watch.observe([{"account_id": a, "event": "login_success", "ip": "198.51.100.7",
    ...                 "device_id": f"dev-{a}", "ts": t} for t, a in enumerate("abc")])
    >>> watch.shared_accounts("a", at_ms=10), watch.shared_accounts("a", at_ms=0)
    (3, 1)
    >>> watch.shared_accounts("z", at_ms=10)
    0
    """

    def __init__(self, window_s: float = 3600.0) -> None:
        self.window_ms = int(window_s * 1000)
        # ("ip" | "device", value) -> {account: (first seen ts, last seen ts)}. IPs and
        # devices only: a big ISP's ASN is shared by everybody.
        self._users: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
        # account -> its last logins as (ts, ip, device) ("" if absent), oldest first
        self._logins: dict[str, list[tuple[int, str, str]]] = {}

    def observe(self, events: list[dict[str, Any]]) -> None:
        """Index the login attempts among ``events`` (auth.events records)."""
        for e in events:
            if e["event"] not in _LOGINS:
                continue
            account, ts = e["account_id"], e["ts"]
            ip, device = e.get("ip"), e.get("device_id")
            history = self._logins.setdefault(account, [])
            history.append((ts, ip or "", device or ""))
            history.sort()  # the full tuple: two logins in the same ms tie-break alike
            del history[:-KEEP_LOGINS]
            for key in (("ip", ip), ("device", device)):
                if key[1]:
                    self._seen(key, account, ts)

    def _seen(self, key: tuple[str, str], account: str, ts: int) -> None:
        users = self._users.setdefault(key, {})
        first, last = users.get(account, (ts, ts))
        users[account] = (min(first, ts), max(last, ts))
        if len(users) > KEEP_ACCOUNTS:  # forget the account seen longest ago
            del users[min(users, key=lambda a: users[a][1])]

    def shared_accounts(self, account_id: str, at_ms: int) -> int:
        """1 + the other accounts that used the IP or device of ``account_id``'s latest login
        before ``at_ms`` within the hour before ``at_ms``; 0 if no login is known."""
        login = next((l for l in reversed(self._logins.get(account_id, ())) if l[0] <= at_ms),
                     None)
        if login is None:
            return 0
        since = at_ms - self.window_ms
        others = [0]
        for key in (("ip", login[1]), ("device", login[2])):
            users = self._users.get(key, {})
            others.append(sum(1 for account, (first, last) in users.items()
                              if account != account_id and first <= at_ms and last >= since))
        return 1 + max(others)
