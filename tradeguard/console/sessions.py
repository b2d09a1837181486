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

    def close(self, sid: str | None) -> Session | None:
        return self._sessions.pop(sid, None) if sid else None

    def __len__(self) -> int:
        return len(self._sessions)


class LoginThrottle:
    """After ``limit`` failed logins for one name within ``window_s``, refuse it for the rest.

    Keyed by user name (not address), so guessing one operator's password from
    many addresses is slowed as much as from one.

    >>> t = LoginThrottle(limit=2, window_s=60)
    >>> t.failed("bob", 0); t.failed("bob", 1); t.blocked("bob", 2), t.blocked("bob", 62)
    (True, False)
    """

    def __init__(self, limit: int = 5, window_s: float = 900.0, max_names: int = 10_000) -> None:
        self.limit, self.window_s, self.max_names = limit, window_s, max_names
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._failures.get(name, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def blocked(self, name: str, now: float) -> bool:
        return len(self._recent(name, now)) >= self.limit

    def failed(self, name: str, now: float) -> None:
        times = self._recent(name, now)
        times.append(now)
        self._failures[name] = times
        self._failures.move_to_end(name)
        while len(self._failures) > self.max_names:
            self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)
