"""Acting on a login, before any order: the session evidence of a successful login, alone.

A takeover is visible at its login: the attacker's device and network, failed attempts
before it, infrastructure shared with other accounts, a hosting network. Waiting for the
first order lets the attacker choose the moment; an account an attacker entered and has
not traded from yet is still compromised. So every successful login is scored by the
policy's *session* signals as if it were an order with no action evidence at all (no
sale, no buy, nothing unusual done yet), and one whose score reaches ``step_up_at``
(``[account] step_up_on_login``) puts the account under step-up at the login's own event
time, with the login as its evidence. The same line as an order's: session evidence alone
reaching it is what a stranger's login looks like (a new device from a hosting network
abroad after failed attempts); a traveller on their own phone, or a customer's new phone
at home, stays below it, as their orders do.

A login of an account whose logins pass a second factor is not in until the factor answers.
Its step-up waits (``settle_awaited``): the factor failed in its session, the broker's own
factor stopped it and the owner is not bothered (a stuffing run's right passwords on accounts
with MFA); the factor passed (a one-time code relayed by a phishing page), the step-up is
raised then; an order comes first (no factor was asked), it is raised at that order.

Pure: the rows come from the account kernel's walk (``AccountFeatures.process_with_logins``),
the infrastructure answers from ``InfrastructureWatch``; event time only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from tradeguard.core.infrastructure import InfrastructureWatch
from tradeguard.features.account import (ACCOUNT_FEATURES, FOREIGN_BIT, LOGIN_ATTRIBUTES,
                                         NO_DEVICE_BIT, UNKNOWN_BIT)
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

__all__ = ["LoginStepUp", "login_features", "login_step_ups", "settle_awaited"]

_COLUMN = {name: j for j, name in enumerate(ACCOUNT_FEATURES)}


@dataclass(frozen=True)
class LoginStepUp:
    """A login whose session evidence alone reaches the step-up line."""

    account_id: str
    ts: int
    score: float
    reasons: list[dict[str, Any]]
    login: dict[str, Any]  # session_id, ip, device_id, user_agent: who answers the challenge
    first_login: bool = False  # the first the engine saw of the account: its factor unknown
    wait_until: int | None = None  # waiting for the login's factor: raised then, unanswered


def login_features(rows: np.ndarray) -> np.ndarray:
    """ACCOUNT_FEATURES rows for logins from the kernel's login rows (flags, failed count):
    the login's own columns set, every action column at its neutral value.

    >>> x = login_features(np.array([[1 << 0 | 1 << 3, 2.0], [1 << UNKNOWN_BIT, 0.0]]))
    >>> {n: float(x[0, _COLUMN[n]]) for n in ("new_device", "new_country", "failed_logins_before",
    ...                                       "usual_device")}
    {'new_device': 1.0, 'new_country': 1.0, 'failed_logins_before': 2.0, 'usual_device': 0.0}
    >>> float(x[1, _COLUMN["unknown_account"]]), float(x[1, _COLUMN["notional_x_usual"]])
    (1.0, 1.0)
    """
    flags = rows[:, 0].astype(np.int64)
    x = np.zeros((len(rows), len(ACCOUNT_FEATURES)))
    # "as usual" ratios read 1 (an order the account always places), not 0
    x[:, _COLUMN["order_rate_x_usual"]] = 1.0
    x[:, _COLUMN["notional_x_usual"]] = 1.0
    for k, name in enumerate(LOGIN_ATTRIBUTES):
        x[:, _COLUMN[f"new_{name}"]] = (flags >> k) & 1
    x[:, _COLUMN["failed_logins_before"]] = rows[:, 1]
    x[:, _COLUMN["unknown_account"]] = (flags >> UNKNOWN_BIT) & 1
    x[:, _COLUMN["foreign_first_login"]] = (flags >> FOREIGN_BIT) & 1
    not_usual = (flags & 1) | ((flags >> UNKNOWN_BIT) & 1) | ((flags >> NO_DEVICE_BIT) & 1)
    x[:, _COLUMN["usual_device"]] = 1 - not_usual
    return x


def login_step_ups(auth: Sequence[Any], rows: np.ndarray, infra: InfrastructureWatch,
                   cfg: PolicyConfig) -> list[LoginStepUp]:
    """The successful logins among ``auth`` (rows from the kernel, in the same order) whose
    session evidence alone scores at least ``cfg.step_up_at``, in event-time order."""
    if not cfg.step_up_on_login or not len(auth):
        return []
    success = np.fromiter((e.event == "login_success" for e in auth), bool, len(auth))
    picked = np.flatnonzero(success & (rows[:, 0] >= 0)).tolist()
    if not picked:
        return []
    accounts = [auth[i].account_id for i in picked]
    times = [auth[i].ts for i in picked]
    extra = {"shared_infra_accounts": [infra.shared_accounts(a, t) for a, t in zip(accounts, times)],
             "hosting_network": infra.new_hosting_logins_many(accounts, times, cfg.hosting_asns)}
    x = login_features(rows[picked])
    # Only the session signals speak for a login: an action signal at its neutral value adds
    # nothing, and the models (anomaly, classifier) are left out, as they judge orders.
    verdicts = score_orders(x, ACCOUNT_FEATURES, cfg, extra)
    session = [j for j, name in enumerate(verdicts.signal_names) if name in cfg.session_signals]
    log_odds = cfg.prior_log_odds + verdicts.contributions[:, session].sum(axis=1)
    scores = 1.0 / (1.0 + np.exp(-log_odds))
    out = []
    for k in np.flatnonzero(scores >= cfg.step_up_at).tolist():
        e = auth[picked[k]]
        out.append(LoginStepUp(
            e.account_id, e.ts, round(float(scores[k]), 4), verdicts.reasons(k, cfg.max_reasons),
            {"session_id": e.session_id, "ip": e.ip, "device_id": e.device_id,
             "user_agent": e.user_agent}, bool(x[k, _COLUMN["unknown_account"]])))
    return sorted(out, key=lambda s: (s.ts, s.account_id))


#: Auth events of a second factor: a login's own, or an answer to a step-up.
MFA_PASSED, MFA_FAILED = "mfa_challenge_passed", "mfa_challenge_failed"


def settle_awaited(awaiting: dict[str, LoginStepUp], auth: Sequence[Any],
                   orders: Sequence[Any], now_ms: int) -> list[LoginStepUp]:
    """The login step-ups in ``awaiting`` (account -> step-up waiting for its login's factor)
    that ``auth`` and ``orders`` settle, each at the event time that settles it; the settled
    ones leave ``awaiting``, those dropped included.

    The first of these settles one: its login's factor passed in its session (raised then), an
    order of the account at or after the login (raised at the order), its login's factor failed
    in its session (dropped: the session never opened), its ``wait_until`` passed by ``now_ms``
    (the event time the partition has reached: raised at it). A failure the Kafka edge found
    unsigned (``authoritative`` false) drops nothing: whoever can write ``auth.events`` could
    send one.

    >>> s = LoginStepUp("a", 10, 0.9, [], {"session_id": "s-1"})
    >>> class E:
    ...     def __init__(self, event, ts):
    ...         self.event, self.ts, self.session_id, self.account_id = event, ts, "s-1", "a"
    >>> waiting = {"a": s}
    >>> [(x.account_id, x.ts) for x in settle_awaited(waiting, [E(MFA_PASSED, 25)], [], 25)]
    [('a', 25)]
    >>> waiting
    {}
    >>> waiting = {"a": s}
    >>> settle_awaited(waiting, [E(MFA_FAILED, 25)], [], 25), waiting
    ([], {})
    >>> waiting = {"a": replace(s, wait_until=70)}
    >>> settle_awaited(waiting, [], [], 69), [(x.ts, x.wait_until) for x in
    ...                                       settle_awaited(waiting, [], [], 80)]
    ([], [(70, 70)])
    """
    if not awaiting:
        return []
    first: dict[str, tuple[int, bool]] = {}  # account -> (settled at, raised)
    for e in auth:
        p = awaiting.get(e.account_id)
        if p is None or e.ts < p.ts or e.session_id != p.login["session_id"]:
            continue
        if e.event == MFA_PASSED or (e.event == MFA_FAILED
                                        and getattr(e, "authoritative", True)):
            _earliest(first, e.account_id, e.ts, e.event == MFA_PASSED)
    for o in orders:
        p = awaiting.get(o.account_id)
        if p is not None and o.ts >= p.ts:
            _earliest(first, o.account_id, o.ts, True)
    for account_id, p in awaiting.items():
        if p.wait_until is not None and p.wait_until <= now_ms:
            _earliest(first, account_id, p.wait_until, True)
    out = []
    for account_id, (ts, raised) in sorted(first.items()):
        p = awaiting.pop(account_id)
        if raised:
            out.append(replace(p, ts=ts))
    return sorted(out, key=lambda s: (s.ts, s.account_id))


def _earliest(first: dict[str, tuple[int, bool]], account_id: str, ts: int, raised: bool) -> None:
    """Keep the earlier settlement of an account (at equal times, the raising one)."""
    known = first.get(account_id)
    if known is None or ts < known[0] or (ts == known[0] and raised and not known[1]):
        first[account_id] = (ts, raised)
