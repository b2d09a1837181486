"""Operator sessions held server-side, their CSRF tokens, and a brake on password guessing.

The browser holds only a random session id (in an HttpOnly, Secure,
SameSite=Strict cookie); who it belongs to, its role and its CSRF token stay
here. Every state-changing request must carry the session's CSRF token in its
form, compared in constant time.

>>> store = SessionStore(idle_s=60, absolute_s=3600)
>>> s = store.open("alice", "analyst", "local", now=0.0)
>>> store.get(s.sid, now=30.0).user, store.get(s.sid, now=200.0)
('alice', None)
>>> check_csrf(s, s.csrf), check_csrf(s, "forged")
(True, False)
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["LoginThrottle", "Session", "SessionStore", "check_csrf"]


@dataclass
class Session:
    sid: str
    user: str | None  # None: a pre-login session (carries the login form's CSRF token)
    role: str | None
    auth: str | None
    csrf: str
    created: float
    seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    def flash(self, kind: str, message: str) -> None:
        self.flashes = (self.flashes + [(kind, message)])[-5:]

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out


def check_csrf(session: Session | None, token: str | None) -> bool:
    """True when ``token`` is this session's CSRF token (constant-time compare)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class SessionStore:
    """Sessions by id, expiring after ``idle_s`` without use or ``absolute_s`` in all.

    Bounded: past ``max_sessions`` the least recently used are dropped, so a
    flood of anonymous login-page visits cannot grow it without limit.
    """

    def __init__(self, idle_s: float = 1800.0, absolute_s: float = 12 * 3600.0,
                 max_sessions: int = 10_000) -> None:
        self.idle_s, self.absolute_s, self.max_sessions = idle_s, absolute_s, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, user: str | None, role: str | None, auth: str | None, now: float) -> Session:
        """A new session with fresh id and CSRF token (a login always gets a new id)."""
        s = Session(secrets.token_urlsafe(32), user, role, auth, secrets.token_urlsafe(32),
                    now, now)
        self._sessions[s.sid] = s
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return s

    def get(self, sid: str | None, now: float) -> Session | None:
        s = self._sessions.get(sid) if sid else None
        if s is None:
            return None
        if now - s.seen > self.idle_s or now - s.created > self.absolute_s:
            del self._sessions[sid]
            return None
        s.seen = now
        self._sessions.move_to_end(sid)
        return s

    def logged_in(self, user: str, now: float) -> bool:
        """Whether ``user`` has a live session (a lockout must not reach them)."""
        return any(s.user == user and now - s.seen <= self.idle_s
                   and now - s.created <= self.absolute_s for s in self._sessions.values())

    def close(self, sid: str | None) -> Session | None:
        return self._sessions.pop(sid, None) if sid else None

    def __len__(self) -> int:
        return len(self._sessions)


class LoginThrottle:
    """A brake on password guessing that a stranger cannot turn into a lockout.

    Failures are counted per (name, source) and per source, each with its own
    limit; past it, that pair or that source waits ``backoff_s`` doubled for every
    further failure (up to ``window_s``). A third count per name, across sources,
    slows guessing one operator's password from many addresses, but it never
    stops a name that is logged in elsewhere (an attacker cannot lock out a
    supervisor mid-incident), and never a source that has not failed itself.

    :meth:`begin` is called before the password is checked and counts the attempt
    as a failure at once (:meth:`succeeded` takes it back), so concurrent attempts
    are counted as they start, not as they finish: 50 at once get ``limit`` checks.

    >>> t = LoginThrottle(limit=2, window_s=60, backoff_s=10)
    >>> t.begin("bob", "1.2.3.4", 0), t.begin("bob", "1.2.3.4", 0)
    (None, None)
    >>> t.begin("bob", "1.2.3.4", 1) is not None, t.begin("bob", "5.6.7.8", 1)
    (True, None)
    >>> t.begin("bob", "1.2.3.4", 11)   # back-off over
    """

    def __init__(self, limit: int = 5, window_s: float = 900.0, backoff_s: float = 30.0,
                 per_source: int | None = None, per_name: int | None = None,
                 max_keys: int = 100_000) -> None:
        self.limit, self.window_s, self.backoff_s = limit, window_s, backoff_s
        self.per_source = per_source if per_source is not None else 4 * limit
        self.per_name = per_name if per_name is not None else 4 * limit
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple, deque[float]] = OrderedDict()
        #: (name, source) pair -> its attempts begun and not yet answered (being checked).
        self._in_flight: dict[tuple, int] = {}

    def _recent(self, key: tuple, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def _wait(self, key: tuple, limit: int, now: float) -> float:
        """Seconds ``key`` must still wait: 0 under ``limit`` failures, then doubling."""
        times = self._recent(key, now)
        if len(times) < limit:
            return 0.0
        backoff = min(self.backoff_s * 2 ** (len(times) - limit), self.window_s)
        return max(0.0, times[-1] + backoff - now)

    def _count(self, key: tuple, now: float) -> None:
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def begin(self, name: str, source: str | None, now: float,
              logged_in: bool = False) -> str | None:
        """Why this attempt is refused now, or None: then it is counted as a failure
        until :meth:`succeeded` says otherwise. ``logged_in``: the name has a live session."""
        src = source or "?"
        waits = [self._wait(("pair", name, src), self.limit, now),
                 self._wait(("source", src), self.per_source, now)]
        if not logged_in and self._recent(("pair", name, src), now):
            waits.append(self._wait(("name", name), self.per_name, now))
        wait = max(waits)
        if wait > 0:
            return f"Too many failed logins; try again in {wait:.0f} s."
        for key in (("pair", name, src), ("source", src), ("name", name)):
            self._count(key, now)
        pair = ("pair", name, src)
        self._in_flight[pair] = self._in_flight.get(pair, 0) + 1
        return None

    def failed(self, name: str, source: str | None) -> None:
        """The password was wrong (or could not be checked): the attempt stays counted."""
        self._answered(("pair", name, source or "?"))

    def succeeded(self, name: str, source: str | None) -> None:
        """The password was right: forget this pair's failures and take back this attempt,
        unless other attempts of the same pair are still being checked. Then nothing of the
        pair is forgotten: 50 attempts at once, the right one among them, would otherwise
        reopen the limit for every one checked after it (CI saw 6 of 50 checked)."""
        src = source or "?"
        pair = ("pair", name, src)
        self._answered(pair)
        if pair not in self._in_flight:
            self._failures.pop(pair, None)
        for key in (("source", src), ("name", name)):
            times = self._failures.get(key)
            if times:
                times.pop()

    def _answered(self, pair: tuple) -> None:
        left = self._in_flight.get(pair, 0) - 1
        if left > 0:
            self._in_flight[pair] = left
        else:
            self._in_flight.pop(pair, None)
