"""The account side of one partition: logins, orders and labels in; decisions, controls, flow out.

Pure: typed records in, typed outputs out, no Kafka, no wall clock. Every time
is the records' own (event time): a control raised on an order carries that
order's ``ts``; a halt is enforced by the order's ``ts``.

Per call, logins and orders are merged in event time and walked by one Numba
kernel (``AccountFeatures.process``); the models then score the orders in that
same order (prequential: each order judged by the models as they were before
it); the policy turns features and model scores into a score, an action and
reasons; controls in force override. Labels split the call: the records before
a label are decided by the models as they were before it.

Accounts idle for ``idle_horizon_s`` of event time leave the hot feature arrays for
a packed cold tier (``AccountFeatures.evict_idle``) and come back bit for bit when
they show up again, so the state stops growing with every account ever seen and no
decision changes. The sweep runs at coarse steps of the core's own event-time
progress (never the wall clock), so live, restore and replay evict alike.
"""

from __future__ import annotations

import heapq
import pickle
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from streams.controls import AccountControl
from tradeguard.core.blocks import ACTIONS, BLOCK, HOLD, DecisionBlock, FlowBlock, ReasonsEncoder
from tradeguard.core.board import ControlBoard
from tradeguard.core.infrastructure import InfrastructureWatch
from tradeguard.core.logins import (MFA_FAILED, MFA_PASSED, LoginStepUp, login_step_ups,
                                    settle_awaited)
from tradeguard.core.profiles import ProfileBook
from tradeguard.features.account import ACCOUNT_FEATURES, AccountFeatures, AccountParams
from tradeguard.features.batches import AUTH_KINDS, OTHER, AuthBatch, OrderBatch
from tradeguard.features.ids import stable_hash64
from tradeguard.models import AccountAnomaly, FraudClassifier
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

__all__ = ["ACCOUNT_SQUASH", "AccountCore", "AccountOutputs"]

_NAN = float("nan")

#: Event time an account may stay idle before its state leaves the hot arrays (30 days).
IDLE_HORIZON_S = 30 * 86400.0
#: Sweeps for idle accounts run each time event time crosses a multiple of the horizon
#: over this: an account leaves between 1 and 1 + 1/16 horizons after its last event.
SWEEPS_PER_HORIZON = 16
#: Accounts one call evicts at most (a few ms): a sweep of many goes on over the next
#: calls rather than stalling one step.
EVICTIONS_PER_CALL = 2048

# How the models squash each account feature into [0, 1] (see tradeguard.models.squash).
ACCOUNT_SQUASH: dict[str, str | tuple[str, float]] = {
    "secs_since_login": "seconds",
    **{name: "flag" for name in ("new_device", "new_ip", "new_asn", "new_country",
                                 "new_user_agent", "session_mismatch", "first_buy_of_ticker",
                                 "first_overseas_trade", "sudden_margin", "usual_device")},
    # A thin-ticker buy matters from ~1% of the ticker's daily value up.
    "thin_ticker_notional_x_adv": ("ratio", 0.02),
}

_RANK = {"step_up": 1, "freeze": 2}
#: Flow risk: scores are capped below CAMPAIGN_BUY, which only a campaign buy carries.
MAX_FLOW_SCORE, CAMPAIGN_BUY = 0.9999, 1.0
_THIN_X = ACCOUNT_FEATURES.index("thin_ticker_notional_x_adv")
#: The reason an allowed buy of a halted ticker carries (gateways honour it: gateway.md).
HALT_EXEMPT = "halt_exempt"


def clean_sessions(session_evidence: np.ndarray, cfg: PolicyConfig) -> np.ndarray:
    """Which orders' session evidence (log-odds, every session signal counted) is low enough
    to pass a halt the engine raised, if the order is allowed on its own score.

    A halt exists to stop the buys of hijacked accounts, and those show session evidence:
    a new device or network, failed logins, a replayed cookie, shared infrastructure. The
    customers who have been buying the stock from home all along are spared; an account the
    engine has never seen adds a little and alone stays under the line. A halt an analyst
    placed spares no one.
    """
    return (session_evidence < cfg.halt_exempt_below) & cfg.halt_spares_clean_sessions


@lru_cache(maxsize=64)
def _session_columns(signal_names: tuple[str, ...], session_signals: frozenset) -> np.ndarray:
    """Columns of the session signals among a verdict's signals (per policy, not per call)."""
    columns = np.array([j for j, name in enumerate(signal_names) if name in session_signals],
                       dtype=np.intp)
    columns.flags.writeable = False  # shared by every call under the policy
    return columns


#: Later than any event time: "no deadline open" for AccountCore's due floor.
NEVER_DUE = 2**62


def _finite_notional(notional: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(notional, nan=0.0, posinf=0.0)`` bit for bit, in place, with one check
    when every value is finite (always, past the input bounds): nan_to_num's Python-level
    passes cost a paced worker's one-order call more than its arithmetic.

    >>> _finite_notional(np.array([1.5, np.nan, np.inf, -np.inf])).tolist()
    [1.5, 0.0, 0.0, -1.7976931348623157e+308]
    """
    if not np.isfinite(notional).all():
        np.copyto(notional, 0.0, where=np.isnan(notional) | (notional == np.inf))
        np.copyto(notional, np.finfo(np.float64).min, where=notional == -np.inf)
    return notional


#: The auth event on which a login may be stepped up (``logins.login_step_ups``).
LOGIN_SUCCESS = "login_success"
#: A ticker with no market history yet (a new listing, the day the engine is deployed) is
#: valued as a penny stock, a daily traded value of 20M yen: a buy in it is judged as a
#: buy in a thin stock until its trades say otherwise.
UNKNOWN_TICKER_ADV_VALUE = 2e7


@dataclass
class AccountOutputs:
    """What one call produced: one decision and one flow record per order, and account controls."""

    decisions: DecisionBlock = field(default_factory=DecisionBlock.empty)
    flows: FlowBlock = field(default_factory=FlowBlock.empty)
    account_controls: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: "AccountOutputs") -> None:
        self.decisions = self.decisions.concat(other.decisions)
        self.flows = self.flows.concat(other.flows)
        self.account_controls += other.account_controls


#: The login batch of a call with none: built once, read only (kernels take it as it is).
_NO_LOGINS = AuthBatch.from_columns(account=[], kind=[], ts_ms=[], session=[], ip=[], device=[],
                                    asn=[], country=[], user_agent=[])


class AccountCore:
    """Everything one partition knows about its accounts, and the per-order decision."""

    def __init__(self, home_market: str = "JP", remember_orders: int = 50_000,
                 profiles: ProfileBook | None = None,
                 anomaly_window: int = 250, infra: InfrastructureWatch | None = None,
                 idle_horizon_s: float = IDLE_HORIZON_S) -> None:
        self.home_market = home_market
        self.features = AccountFeatures(AccountParams(home_country=home_market))
        # 0: never evict. Past the session TTL, so an evicted account's sessions have all
        # expired: its freed id, reused, can never pick up one of them.
        if idle_horizon_s and not idle_horizon_s > self.features.params.session_ttl_s:
            raise ValueError(f"idle_horizon_s: {idle_horizon_s} must be 0 (never evict) or "
                             f"above the session TTL, {self.features.params.session_ttl_s} s")
        self.idle_horizon_s = float(idle_horizon_s)
        self._progress_ms: int | None = None  # the latest event time seen: the sweeps' clock
        self._swept_ms: int | None = None  # the sweep boundary last passed
        self._evicting_before: int | None = None  # a sweep under way: accounts idle before
        # Learning one order in 16 keeps River's per-sample cost (~16 us) to ~1 us
        # an order with no measurable loss of ranking (tradeguard/models/anomaly.py).
        self.anomaly = AccountAnomaly(ACCOUNT_FEATURES, ACCOUNT_SQUASH, window_size=anomaly_window,
                                      learn_every=16)
        self.classifier = FraudClassifier(ACCOUNT_FEATURES, ACCOUNT_SQUASH)
        # Feature rows of recent orders, so a label arriving later can teach the
        # classifier what that order looked like. Bounded: oldest forgotten first.
        self.remember_orders = remember_orders
        self._recent = RecentOrders(remember_orders)
        # Each ticker's normal daily traded value and last price, from tickers.profile, by
        # event time; shared by every partition of a worker (a collaborator, not snapshotted).
        self.profiles = ProfileBook() if profiles is None else profiles
        # Logins of every account, not just this partition's: shared by all on a worker.
        self.infra = InfrastructureWatch() if infra is None else infra
        self._reasons = ReasonsEncoder()
        self._last: list[tuple] = []  # the last call's decided segments, for a shadow policy
        # Orders of the last call allowed with a clean session: a halt raised later in the
        # same batch spares them (InProcessEngine's fix-up reads it).
        self.halt_clean: set[str] = set()
        # Step-ups this core raised and awaits an answer to: account -> (raised at, answer
        # by), event ms.
        self._challenges: dict[str, tuple[int, int]] = {}
        # Step-ups raised on a login: account -> the login's session (its own factor is not
        # an answer; see answer_challenge).
        self._login_challenges: dict[str, str | None] = {}
        # Accounts that passed a step-up: account -> (passed at, trusted until, session,
        # device of the answer).
        self._verified: dict[str, tuple[int, int, str | None, str | None]] = {}
        # Accounts whose logins pass a second factor: account -> event time of the first
        # factor answer seen. Kept when the account goes idle (a few bytes an MFA account):
        # forgetting it would change how the account's next login is judged.
        self._factor_since: dict[str, int] = {}
        # Login step-ups waiting for their login's factor: such accounts', and first logins'
        # for at most the policy's factor_wait_s (_wait_for_factor, logins.py).
        self._awaiting_factor: dict[str, LoginStepUp] = {}
        # At or before every step-up's deadline and every trust's end (a lower bound: an
        # answered challenge leaves it low until the next scan): before it, nothing expires
        # and expire_challenges returns at once instead of scanning every open one.
        self._due_floor = NEVER_DUE

    # -- the one way in -------------------------------------------------------------------

    def process(self, auth: Sequence[Any], orders: Sequence[Any], feedback: Sequence[Any],
                board: ControlBoard, cfg: PolicyConfig) -> AccountOutputs:
        """Logins, orders and labels of this partition, each sorted by event time, merged.

        Records are typed (``streams.wire`` structs, or anything with the same
        attributes). A label splits the call: what came before it is decided
        first, then it is learned, then the rest.
        """
        auth = sorted(auth, key=_ts)
        orders = sorted(orders, key=_ts)
        for e in auth:
            if e.event == MFA_PASSED or e.event == MFA_FAILED:
                self._factor_since.setdefault(e.account_id, e.ts)
        self._last = []
        self.halt_clean = set()
        out = AccountOutputs()
        # Labels and answers to step-ups split the call: what came before is decided under
        # the controls and models as they were; then they take effect.
        answers = [e for e in auth if e.event == MFA_PASSED or e.event == MFA_FAILED]
        if not feedback and not answers:
            self._segment(auth, orders, board, cfg, out)
        else:
            # The segment not yet decided: auth[a:a_end] and orders[o:o_end], with its
            # accounts' successful logins' sessions and its accounts with an order (either may
            # raise a step-up).
            a = o = a_end = o_end = 0
            logins: dict[str, set[str | None]] = {}
            ordering: set[str] = set()
            for event in sorted([*feedback, *answers], key=_ts):
                a_next = _count_until(auth, a_end, event.ts)
                o_next = _count_until(orders, o_end, event.ts)
                for e in auth[a_end:a_next]:
                    if e.event == LOGIN_SUCCESS:
                        logins.setdefault(e.account_id, set()).add(e.session_id)
                ordering.update(r.account_id for r in orders[o_end:o_next])
                a_end, o_end = a_next, o_next
                if not hasattr(event, "label") and self._moot(
                        event, logins, ordering, auth[a:a_end][:1] + orders[o:o_end][:1], cfg):
                    continue  # the segment runs on through it, as if it were not there
                self._segment(auth[a:a_end], orders[o:o_end], board, cfg, out)
                a, o = a_end, o_end
                logins.clear()
                ordering.clear()
                if hasattr(event, "label"):
                    out.account_controls += self.learn_feedback([event], board)
                else:
                    out.account_controls += self.answer_challenge(event, board, cfg)
            self._segment(auth[a:], orders[o:], board, cfg, out)
        last = max((r.ts for r in (*auth[-1:], *orders[-1:], *feedback)), default=None)
        if self._challenges and last is not None:
            out.account_controls += self.expire_challenges(last, board)
        if last is not None:
            self._sweep_idle(last)
        return out

    def _moot(self, answer: Any, logins: dict[str, set[str | None]], ordering: set[str],
              firsts: list[Any], cfg: PolicyConfig) -> bool:
        """Whether an answer to a step-up changes nothing, were the segment before it decided
        first (``logins``: its accounts' successful logins' sessions; ``ordering``: its
        accounts with an order; ``firsts``: its first login and first order).

        Most answers are a login's own factor, with no challenge open or only the one its
        login raised: splitting the call at each cost a replayed day five thousand small
        segments. One is moot when its account has no challenge open, places no order before
        it, and logged in before it only in the session it passes in (a step-up raised on
        that login is not answered by its own factor), and no deadline or trust can have
        run out by its time (``expire_challenges`` would return at once): then
        ``answer_challenge`` returns nothing and changes nothing.
        """
        account_id, ts = answer.account_id, answer.ts
        if account_id in self._challenges or account_id in ordering or ts >= self._due_floor:
            return False
        sessions = logins.get(account_id)
        if sessions and (answer.event != MFA_PASSED or sessions != {answer.session_id}):
            return False
        # A step-up the segment raises is due its timeout after it, at the earliest.
        return all(ts < r.ts + int(cfg.step_up_timeout_s * 1000) for r in firsts)

    # -- idle accounts --------------------------------------------------------------------

    def _sweep_idle(self, last_ms: int) -> list[str]:
        """Evict the accounts idle past the horizon, once per sweep period of event time,
        ``EVICTIONS_PER_CALL`` a call at most.

        An account with a step-up outstanding stays; so does one with a passed step-up
        whose trust ran out less than a horizon ago (a late order may still read it).
        Returns the accounts evicted.
        """
        if not self.idle_horizon_s:
            return []
        horizon_ms = int(self.idle_horizon_s * 1000)
        period_ms = max(horizon_ms // SWEEPS_PER_HORIZON, 1)
        self._progress_ms = last_ms if self._progress_ms is None else max(self._progress_ms,
                                                                            last_ms)
        boundary = self._progress_ms // period_ms * period_ms
        if self._swept_ms is None or boundary > self._swept_ms:
            self._swept_ms = boundary
            self._evicting_before = boundary - horizon_ms
        before = self._evicting_before
        if before is None:
            return []
        keep = {*self._challenges, *self._login_challenges, *self._awaiting_factor,
                *(a for a, trust in self._verified.items() if trust[1] > before)}
        evicted = self.features.evict_idle(before, keep, EVICTIONS_PER_CALL)
        if len(evicted) < EVICTIONS_PER_CALL:
            self._evicting_before = None  # the sweep is done
        for account_id in evicted:
            self._verified.pop(account_id, None)
        return evicted

    # -- step-up challenges ---------------------------------------------------------------

    def answer_challenge(self, event: Any, board: ControlBoard,
                         cfg: PolicyConfig) -> list[dict[str, Any]]:
        """A step-up answered: passed releases the account, failed freezes it.

        Only a step-up this core raised, answered at or after it and before its deadline,
        counts; a late answer finds the account frozen for the timeout. This core's own
        record of its challenges decides, not the board: a restored core replaying against
        a scratch board learns the answer all the same (and publishes nothing the board
        does not need). A pass trusts the session and device that passed it for
        ``cfg.verified_for_s``: the customer proved it is them (phishing-resistant factor),
        so that session's evidence is explained away; another session is judged afresh.
        """
        account_id = event.account_id
        out = self.expire_challenges(event.ts, board)
        if not getattr(event, "authoritative", True):
            return out  # unsigned (issue 21): anyone who can write auth.events could pass it
        challenge = self._challenges.get(account_id)
        if challenge is None or event.ts < challenge[0]:
            return out
        login_session = self._login_challenges.get(account_id)
        withdrawn = False
        if login_session is not None and event.session_id == login_session:
            # The login's own factor, in the session the step-up was raised on, is not an
            # answer to it: a relayed one-time code passes it (that is how a phished session
            # opens). Failed, though, the session never opened: the step-up has nothing left
            # to stop, and the owner is not bothered with it.
            if event.event == MFA_PASSED:
                return out
            withdrawn = True
        del self._challenges[account_id]
        self._login_challenges.pop(account_id, None)
        passed = event.event == MFA_PASSED
        if passed:
            self._verified[account_id] = (event.ts, event.ts + int(cfg.verified_for_s * 1000),
                                          event.session_id, event.device_id)
            self._due_floor = min(self._due_floor, self._verified[account_id][1])
        control = board.account_control(account_id)
        if control is None or control["action"] != "step_up":
            return out  # released or frozen meanwhile, or a scratch board: nothing to publish
        record = AccountControl(
            account_id=account_id, action="release" if passed or withdrawn else "freeze",
            reason="passed the step-up challenge" if passed
            else "the login's own factor failed: its session never opened" if withdrawn
            else "failed the step-up challenge",
            evidence={"order_id": (control.get("evidence") or {}).get("order_id"),
                      "session_id": event.session_id},
            source="engine", ts=event.ts).record()
        board.apply_account(record)
        return out + [record]

    def expire_challenges(self, now_ms: int, board: ControlBoard) -> list[dict[str, Any]]:
        """Freeze the accounts whose step-up went unanswered past its deadline, at the deadline.

        Also forgets trust from passed challenges that has run out.
        """
        if now_ms < self._due_floor:
            return []
        out = []
        # Only the challenges due, oldest deadline first: sorting all of them on every
        # call cost a paced worker more than deciding its order.
        due = sorted((answer_by, account_id)
                     for account_id, (_, answer_by) in self._challenges.items()
                     if answer_by <= now_ms)
        for answer_by, account_id in due:
            del self._challenges[account_id]
            self._login_challenges.pop(account_id, None)
            control = board.account_control(account_id)
            if control is None or control["action"] != "step_up":
                continue  # released or frozen meanwhile
            record = AccountControl(
                account_id=account_id, action="freeze", reason="step-up challenge unanswered",
                evidence={"order_id": (control.get("evidence") or {}).get("order_id")},
                source="engine", ts=answer_by).record()
            board.apply_account(record)
            out.append(record)
        if self._verified:
            for account_id in [a for a, v in self._verified.items() if v[1] <= now_ms]:
                del self._verified[account_id]
        self._due_floor = self._next_due()
        return out

    def _next_due(self) -> int:
        """The earliest step-up deadline or trust end still open (NEVER_DUE if none)."""
        return min(min((a for _, a in self._challenges.values()), default=NEVER_DUE),
                   min((v[1] for v in self._verified.values()), default=NEVER_DUE))

    def _verified_mask(self, orders: list) -> np.ndarray | None:
        """Orders placed in the trust of a passed step-up (same session or same device, within
        its time), or None if there are none."""
        verified = self._verified
        if not verified:
            return None
        mask = np.zeros(len(orders), dtype=bool)
        for i, o in enumerate(orders):
            trust = verified.get(o.account_id)
            if trust is None or not trust[0] <= o.ts < trust[1]:
                continue
            session, device = trust[2], trust[3]
            if (session is not None and o.session_id == session) or \
                    (device is not None and o.device_id == device):
                mask[i] = True
        return mask if mask.any() else None

    def _segment(self, auth: list, orders: list, board: ControlBoard, cfg: PolicyConfig,
                 out: AccountOutputs) -> None:
        if not auth and not orders:
            return
        self.infra.observe(auth)
        runs = _runs([a.ts for a in auth], [o.ts for o in orders])
        batch = self.order_batch(orders)
        features, logins = self.features.process_with_logins(self.auth_batch(auth), batch, runs)
        # Logins the evidence says are an attacker's: step-ups at the login's time, raised in
        # event-time order among the orders' own controls (an order before the login is
        # decided without it).
        pending = self._wait_for_factor(login_step_ups(auth, logins, self.infra, cfg), auth,
                                        orders, cfg)
        if orders:
            out.extend(self._decide(orders, batch, features, board, cfg, pending))
        self._raise_login_step_ups(pending, None, board, cfg, out.account_controls)

    def _wait_for_factor(self, pending: list[LoginStepUp], auth: list, orders: list,
                         cfg: PolicyConfig) -> list[LoginStepUp]:
        """``pending`` less the step-ups that wait for their login's own factor, plus the
        waiting ones the segment's ``auth`` and ``orders`` settle (``settle_awaited``), in
        event-time order: raised among the segment's orders at the time that settled them,
        as any login step-up is at its login's.

        A login waits when the account passed or failed a factor before it (it has one), or,
        for ``cfg.factor_wait_s``, when it is the first the engine saw of the account.
        """
        now, waiting = [], []
        for p in pending:
            if self._factor_since.get(p.account_id, NEVER_DUE) < p.ts:
                waiting.append(p)
            elif p.first_login and cfg.factor_wait_s:
                waiting.append(replace(p, wait_until=p.ts + int(cfg.factor_wait_s * 1000)))
            else:
                now.append(p)
        if not waiting and not self._awaiting_factor:
            return pending
        for p in waiting:
            self._awaiting_factor[p.account_id] = p
        reached = max(r.ts for r in (*auth[-1:], *orders[-1:]))  # a segment is never empty
        settled = settle_awaited(self._awaiting_factor, auth, orders, reached)
        return sorted(now + settled, key=lambda s: (s.ts, s.account_id))

    def _raise_login_step_ups(self, pending: list[LoginStepUp], until_ms: int | None,
                              board: ControlBoard, cfg: PolicyConfig,
                              controls: list[dict[str, Any]]) -> None:
        """Raise the pending login step-ups at or before ``until_ms`` (all with None), oldest
        first, on accounts with no control in force and no trust from a passed step-up on
        the login's device."""
        while pending and (until_ms is None or pending[0].ts <= until_ms):
            p = pending.pop(0)
            if board.account_control(p.account_id) is not None:
                continue  # already stepped up or frozen
            trust = self._verified.get(p.account_id)
            if trust is not None and trust[0] <= p.ts < trust[1] and \
                    trust[3] is not None and trust[3] == p.login["device_id"]:
                continue  # the customer proved it is them on this device
            answer_by = p.ts + int(cfg.step_up_timeout_s * 1000)
            record = AccountControl(
                account_id=p.account_id, action="step_up",
                reason=f"login {p.login['session_id']} scored {p.score:.2f}",
                evidence={"order_id": None, "login": p.login, "score": p.score,
                          "reasons": p.reasons, "answer_by": answer_by},
                source="engine", ts=p.ts).record()
            self._challenges[p.account_id] = (p.ts, answer_by)
            self._due_floor = min(self._due_floor, answer_by)
            self._login_challenges[p.account_id] = p.login["session_id"]
            board.apply_account(record)
            controls.append(record)

    # -- columns --------------------------------------------------------------------------

    def auth_batch(self, events: Sequence[Any]) -> AuthBatch:
        if not events:  # most account-side calls of a paced worker carry orders only
            return _NO_LOGINS
        account_id = self.features.account_id
        return AuthBatch.from_columns(
            account=[account_id(e.account_id) for e in events],
            kind=[AUTH_KINDS.get(e.event, OTHER) for e in events],
            ts_ms=[e.ts for e in events],
            session=[_hash(e.session_id) for e in events],
            ip=[_hash(e.ip) for e in events],
            device=[_hash(e.device_id) for e in events],
            asn=[_hash(None if e.asn is None else str(e.asn)) for e in events],
            country=[_hash(e.country) for e in events],
            user_agent=[_hash(e.user_agent) for e in events],
        )

    def order_batch(self, orders: Sequence[Any]) -> OrderBatch:
        """The columnar batch the feature kernels read, from typed order records."""
        account_id, profile_at = self.features.account_id, self.profiles.at
        profiles = [profile_at(o.ticker, o.ts) for o in orders]
        home = self.home_market
        return OrderBatch.from_columns(
            account=[account_id(o.account_id) for o in orders],
            ticker=[_ticker_key(o.ticker) for o in orders],
            is_buy=[o.side == "buy" for o in orders],
            qty=[o.qty for o in orders],
            # A market order has no price of its own: value it at the last trade.
            price=[o.price if o.price is not None else p[1] for o, p in zip(orders, profiles)],
            margin=[o.margin for o in orders],
            overseas=[o.market is not None and o.market != home for o in orders],
            ts_ms=[o.ts for o in orders],
            session=[_hash(o.session_id) for o in orders],
            ip=[_hash(o.ip) for o in orders],
            device=[_hash(o.device_id) for o in orders],
            user_agent=[_hash(o.user_agent) for o in orders],
            holdings_value=[_NAN if o.holdings_value is None else o.holdings_value
                            for o in orders],
            ticker_adv_value=[p[0] if p[0] > 0 else UNKNOWN_TICKER_ADV_VALUE for p in profiles],
        )

    # -- decide ---------------------------------------------------------------------------

    def _decide(self, orders: list, batch: OrderBatch, features: np.ndarray,
                board: ControlBoard, cfg: PolicyConfig,
                pending: list[LoginStepUp] | None = None) -> AccountOutputs:
        # Prequential: each order is judged by the models as they were before it.
        anomaly, windows = self.anomaly.score_learn_many(features)
        accounts = [o.account_id for o in orders]
        ts = batch.ts_ms
        extra = {"anomaly": anomaly,
                 "shared_infra_accounts": self.infra.shared_accounts_many(accounts, ts.tolist()),
                 "hosting_network": self.infra.new_hosting_logins_many(accounts, ts.tolist(),
                                                                       cfg.hosting_asns)}
        if self.classifier.is_warm:
            extra["fraud_probability"] = self.classifier.score_many(features)
        self._remember(orders, features)
        # What a shadow policy needs to decide the same orders later, without learning twice.
        self._last.append((orders, batch, features, extra, windows))
        controls: list[dict[str, Any]] = []
        controlled = np.zeros(len(orders), dtype=bool)
        decisions = self._verdicts(orders, batch, features, extra, windows, board, cfg,
                                   controls, controlled, pending)
        notional = _finite_notional(batch.qty * batch.price)
        # The account's risk as the ticker side reads it. A buy by an account under step-up
        # or freeze is risky whatever this order scored: a campaign's accounts stay risky
        # once caught. CAMPAIGN_BUY (1.0, which no score reaches) marks a campaign buy: a
        # caught account that shares login infrastructure with other accounts, buying a
        # thin ticker; one such buy halts the ticker (a slow campaign sends one account
        # per ticker).
        # ``controlled``: under step-up or freeze when the order was decided (recorded there,
        # not read back from the board, which later orders of the batch may have changed).
        risk = np.minimum(decisions.score, MAX_FLOW_SCORE)
        thin = features[:, _THIN_X] >= cfg.campaign_buy_adv_share
        shared = np.asarray(extra["shared_infra_accounts"], dtype=np.float64)
        for i in np.flatnonzero(controlled).tolist():
            risk[i] = max(risk[i], MAX_FLOW_SCORE)
            if batch.is_buy[i] and thin[i] and shared[i] >= cfg.campaign_link_accounts:
                risk[i] = CAMPAIGN_BUY
        flows = FlowBlock(ticker=decisions.ticker, account_id=decisions.account_id,
                          side=decisions.side, order_id=decisions.order_id,
                          notional=notional, account_risk=risk, ts=batch.ts_ms.copy())
        # Built once here, not as an empty output to fill: a paced worker calls this per
        # partition per step with a handful of orders, and empty blocks cost as much.
        return AccountOutputs(decisions, flows, controls)

    def _verdicts(self, orders: list, batch: OrderBatch, features: np.ndarray,
                  extra: dict[str, Any], windows: np.ndarray, board: ControlBoard,
                  cfg: PolicyConfig, controls: list[dict[str, Any]] | None,
                  controlled: np.ndarray | None = None,
                  pending: list[LoginStepUp] | None = None) -> DecisionBlock:
        """Scores, actions and reasons under ``cfg``, controls in force applied.

        ``controls`` collects the account controls a high score raises (and the board
        takes them at once); None decides without raising any (a shadow policy).
        ``controlled`` (if given) is set for the orders decided under step-up or freeze.
        The orders allowed with a clean session (``halt_exempt``) are kept in
        ``self.halt_clean`` for a halt raised later in the same batch.
        """
        verdicts = score_orders(features, ACCOUNT_FEATURES, cfg, extra,
                                verified=self._verified_mask(orders))
        session = _session_columns(verdicts.signal_names, cfg.session_signals)
        clean = clean_sessions(verdicts.contributions[:, session].sum(axis=1), cfg)
        scores = np.round(verdicts.scores, 4)
        actions = verdicts.action_codes(cfg)
        reasons = self._reasons.encode(verdicts, cfg.max_reasons)
        accounts = [o.account_id for o in orders]
        tickers = [o.ticker for o in orders]
        # Controls: only the orders that could meet one take the slow path.
        n = len(orders)
        may_meet = ((verdicts.scores >= cfg.step_up_at)
                    | np.fromiter(board.has_account_controls(accounts), bool, n)
                    | (batch.is_buy & np.fromiter(board.has_ticker_controls(tickers), bool, n)))
        if pending:
            stepped_at_login = {p.account_id for p in pending}
            may_meet |= np.fromiter((a in stepped_at_login for a in accounts), bool, n)
        candidates = np.flatnonzero(may_meet).tolist()
        # And the later orders of an account put under control by an earlier one of the call,
        # as they would be were they decided in a call of their own. They join the walk
        # (in order: ``queue`` is a heap of positions) when the control is raised, so a
        # large call walks its candidates, not every order.
        queue, queued = candidates, set(candidates)  # ascending: already a heap
        watched: set[str] = set()
        account_column = None  # built at the first control raised: most calls raise none
        raised = 0 if controls is None else len(controls)
        while queue:
            i = heapq.heappop(queue)
            if pending and controls is not None:
                self._raise_login_step_ups(pending, orders[i].ts, board, cfg, controls)
            self._apply_controls(i, orders[i], float(scores[i]), actions, reasons, board, cfg,
                                 controls, bool(clean[i]), controlled)
            if controls is not None and len(controls) > raised:
                for account in [c["account_id"] for c in controls[raised:]]:
                    if account in watched:
                        continue
                    watched.add(account)
                    if account_column is None:
                        account_column = np.array(accounts, dtype=object)
                    later = np.flatnonzero(account_column[i + 1:] == account) + (i + 1)
                    for j in later.tolist():
                        if j not in queued:
                            queued.add(j)
                            heapq.heappush(queue, j)
                raised = len(controls)
        if controls is not None:
            spared = np.flatnonzero((actions == 0) & clean)
            self.halt_clean.update(orders[i].order_id for i in spared.tolist())
        model = f"{self.anomaly.name}-v{self.anomaly.revision}"
        classifier = self.classifier.version
        versions = {w: f"{model}/w{w};{classifier}" for w in set(windows.tolist())}
        return DecisionBlock(
            order_id=[o.order_id for o in orders], account_id=accounts, ticker=tickers,
            side=[o.side for o in orders], action=actions, score=scores, reasons=reasons,
            model_version=[versions[w] for w in windows.tolist()],
            policy_version=cfg.version, order_ts=batch.ts_ms.copy())

    def shadow(self, board: ControlBoard, cfg: PolicyConfig) -> DecisionBlock:
        """The orders of the last ``process`` call decided under another policy.

        Same features, same model scores (nothing is learned twice), the controls in
        force applied, none raised: what ``cfg`` would have said, for ``decisions.shadow``.
        """
        out = DecisionBlock.empty()
        for orders, batch, features, extra, windows in self._last:
            out = out.concat(self._verdicts(orders, batch, features, extra, windows, board,
                                            cfg, None))
        return out

    def _apply_controls(self, i: int, order: Any, score: float, actions: np.ndarray,
                        reasons: list[bytes], board: ControlBoard, cfg: PolicyConfig,
                        controls: list[dict[str, Any]] | None, clean_session: bool,
                        controlled: np.ndarray | None) -> None:
        """Controls in force override the score; a high score puts the account under control."""
        account_id = order.account_id
        control = board.account_control(account_id)
        wanted = None if controls is None else (
            # freeze_at 1.0 means never by score (scores are rounded: 0.99996 reads 1.0)
            "freeze" if score >= cfg.freeze_at and cfg.freeze_at < 1.0
            else "step_up" if score >= cfg.step_up_at else None)
        current = control["action"] if control else None
        overrides = []
        if current == "step_up" and controls is not None:
            challenge = self._challenges.get(account_id)
            if challenge is not None and order.ts >= challenge[1]:  # unanswered: frozen first
                expired = self.expire_challenges(order.ts, board)
                controls += expired
                control = board.account_control(account_id)
                current = control["action"] if control else None
        if wanted and _RANK[wanted] > _RANK.get(current, 0):
            evidence = {"order_id": order.order_id, "score": score,
                        "reasons": ReasonsEncoder.decode(reasons[i])}
            if wanted == "step_up":
                answer_by = order.ts + int(cfg.step_up_timeout_s * 1000)
                evidence["answer_by"] = answer_by
                self._challenges[account_id] = (order.ts, answer_by)
                self._due_floor = min(self._due_floor, answer_by)
            else:
                self._challenges.pop(account_id, None)
            self._login_challenges.pop(account_id, None)
            record = AccountControl(
                account_id=account_id,
                action=wanted,
                reason=f"order {order.order_id} scored {score:.2f}",
                evidence=evidence,
                source="engine",
                ts=order.ts,
            ).record()
            board.apply_account(record)  # later orders of this batch see it at once
            controls.append(record)
            current = wanted
        if controlled is not None and current in _RANK:
            controlled[i] = True
        if current == "freeze":
            actions[i] = BLOCK
            overrides.append("account_frozen")
        elif current == "step_up" and actions[i] < HOLD:
            actions[i] = HOLD
            overrides.append("account_step_up")
        halt = board.ticker_halt(order.ticker, order.ts) if order.side == "buy" else None
        if halt is not None:
            if (current is None and actions[i] == 0 and halt.get("source") == "engine"
                    and clean_session):
                overrides.insert(0, HALT_EXEMPT)
            else:
                actions[i] = BLOCK
                overrides.insert(0, "ticker_halted")
        if overrides:
            reasons[i] = self._reasons.prepend(overrides, reasons[i], cfg.max_reasons)

    # -- labels ---------------------------------------------------------------------------

    def learn_feedback(self, labels: Sequence[Any], board: ControlBoard) -> list[dict[str, Any]]:
        """Learn from analysts' labels and act on them; return the account controls to publish.

        A labelled order (or, for an account label, every remembered order of the
        account) teaches the classifier. ``legit`` on a controlled account releases
        it; ``fraud`` freezes it.
        """
        expired = self.expire_challenges(min(l.ts for l in labels), board) if labels else []
        rows, ys = [], []
        for label in labels:
            if label.order_id is not None:
                found = self._recent.get(label.order_id)
                matches = [found[1]] if found and found[0] == label.account_id else []
            else:
                matches = self._recent.of_account(label.account_id)
            rows += matches
            ys += [label.label == "fraud"] * len(matches)
        if rows:
            self.classifier.learn_many(np.array(rows), np.array(ys))
        out = expired  # a deadline passed before the label: the freeze comes first
        for label in labels:
            account_id = label.account_id
            if not _label_may_act(label, board):
                continue  # it trained the models above; it changes no control
            self._challenges.pop(account_id, None)  # an analyst's verdict ends the challenge
            self._login_challenges.pop(account_id, None)
            control = board.account_control(account_id)
            if label.label == "legit" and control is not None:
                action, reason = "release", f"labelled legit by {label.source}"
            elif label.label == "fraud" and (control is None or control["action"] != "freeze"):
                action, reason = "freeze", f"labelled fraud by {label.source}"
            else:
                continue
            record = AccountControl(account_id=account_id, action=action, reason=reason,
                                    evidence={"order_id": label.order_id}, source="feedback",
                                    ts=label.ts).record()
            board.apply_account(record)
            out.append(record)
        return out

    def _remember(self, orders: list, features: np.ndarray) -> None:
        self._recent.add([o.order_id for o in orders], [o.account_id for o in orders], features)

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Everything learned: features, both models and the remembered orders."""
        return pickle.dumps({
            # 3: usual_device joined the features (20 columns): a format-2 snapshot's models
            # and remembered rows have 19 and cannot be restored into this core.
            # 4: idle accounts' cold tier in the features, the horizon and its sweep clock.
            # 5: the features' thin-buy baseline is a usual share of a ticker's day, and
            # usual_thin_buy compares each buy with it (a format-4 model learned the old one).
            "format": 5,
            "home_market": self.home_market,
            "remember_orders": self.remember_orders,
            "features": self.features.to_bytes(),
            "anomaly": self.anomaly.to_bytes(),
            "classifier": self.classifier.to_bytes(),
            "recent": self._recent.to_state(),
            "challenges": self._challenges,
            "login_challenges": self._login_challenges,
            "verified": self._verified,
            "factor_since": self._factor_since,
            "awaiting_factor": self._awaiting_factor,
            "idle_horizon_s": self.idle_horizon_s,
            "progress_ms": self._progress_ms,
            "swept_ms": self._swept_ms,
            "evicting_before": self._evicting_before,
        }, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes, profiles: ProfileBook | None = None,
                   infra: InfrastructureWatch | None = None) -> "AccountCore":
        """Restore a snapshot written by ``to_bytes`` (our own state topic only: it is a pickle).

        Ticker profiles and the infrastructure index are not in the snapshot: they
        are shared by the worker's partitions and rebuilt from their topics.
        """
        state = pickle.loads(blob)
        if state.get("format") != 5:
            raise ValueError(f"account snapshot format {state.get('format')!r}, expected 5 "
                             f"(take a fresh one with `tradeguard warm`)")
        restored = cls(state["home_market"], state["remember_orders"], profiles, infra=infra,
                       idle_horizon_s=state["idle_horizon_s"])
        restored.features = AccountFeatures.from_bytes(state["features"])
        restored.anomaly = AccountAnomaly.from_bytes(state["anomaly"])
        restored.classifier = FraudClassifier.from_bytes(state["classifier"])
        restored._recent = RecentOrders.from_state(state["recent"], state["remember_orders"])
        restored._challenges = dict(state.get("challenges", {}))
        restored._login_challenges = dict(state.get("login_challenges", {}))
        restored._verified = dict(state.get("verified", {}))
        restored._factor_since = dict(state.get("factor_since", {}))
        restored._awaiting_factor = dict(state.get("awaiting_factor", {}))
        restored._due_floor = restored._next_due()
        restored._progress_ms, restored._swept_ms = state["progress_ms"], state["swept_ms"]
        restored._evicting_before = state["evicting_before"]
        return restored


class RecentOrders:
    """Feature rows of the last ``capacity`` orders, kept by batch, oldest batches forgotten
    first. The index maps an order id to a plain int (batch number and row), so the garbage
    collector has nothing to walk in it however many orders it holds."""

    _ROWS = 1 << 24  # rows per batch number in an index entry

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._batches: dict[int, tuple[list[str], list[str], np.ndarray]] = {}
        self._index: dict[str, int] = {}
        self._first = self._next = 0  # batch numbers held: [first, next)
        self._size = 0

    def add(self, order_ids: list[str], accounts: list[str], rows: np.ndarray) -> None:
        if not order_ids:
            return
        number, base = self._next, self._next * self._ROWS
        self._batches[number] = (order_ids, accounts, np.array(rows, copy=True))
        self._next += 1
        self._index.update(zip(order_ids, range(base, base + len(order_ids))))
        self._size += len(order_ids)
        while self._size - len(self._batches[self._first][0]) >= self.capacity:
            old_ids, _, _ = self._batches.pop(self._first)
            low, high = self._first * self._ROWS, (self._first + 1) * self._ROWS
            self._first += 1
            self._size -= len(old_ids)
            index = self._index
            for order_id in old_ids:
                if low <= index.get(order_id, -1) < high:  # not since re-added
                    del index[order_id]

    def get(self, order_id: str) -> tuple[str, np.ndarray] | None:
        entry = self._index.get(order_id)
        if entry is None:
            return None
        _, accounts, rows = self._batches[entry // self._ROWS]
        return accounts[entry % self._ROWS], rows[entry % self._ROWS]

    def of_account(self, account_id: str) -> list[np.ndarray]:
        return [rows[i] for ids, accounts, rows in self._batches.values()
                for i, a in enumerate(accounts) if a == account_id]

    def to_state(self) -> list:
        return list(self._batches.values())

    @classmethod
    def from_state(cls, batches: list, capacity: int) -> "RecentOrders":
        recent = cls(capacity)
        for order_ids, accounts, rows in batches:
            recent.add(order_ids, accounts, rows)
        return recent


def _ts(record: Any) -> int:
    return record.ts


def _count_until(records: list, start: int, ts: int) -> int:
    """Index of the first record at ``start`` or later with ``ts`` after ``ts``."""
    i = start
    while i < len(records) and records[i].ts <= ts:
        i += 1
    return i


def _runs(first_ts: list[int], second_ts: list[int]) -> np.ndarray:
    """Two event-time-sorted sequences merged (the first wins ties): (is_second, length) runs."""
    n1, n2 = len(first_ts), len(second_ts)
    if not n2:
        return np.array([[0, n1]] if n1 else [], dtype=np.int64).reshape(-1, 2)
    if not n1:
        return np.array([[1, n2]], dtype=np.int64)
    keys = np.concatenate([np.asarray(first_ts, np.int64), np.asarray(second_ts, np.int64)])
    kind = np.concatenate([np.zeros(n1, np.int64), np.ones(n2, np.int64)])
    merged = kind[np.lexsort((kind, keys))]
    cuts = np.flatnonzero(np.diff(merged)) + 1
    starts = np.concatenate([[0], cuts])
    lengths = np.diff(np.concatenate([starts, [len(merged)]]))
    return np.column_stack([merged[starts], lengths])


@lru_cache(maxsize=1 << 17)
def _hash(value: str | None) -> int:
    """stable_hash64, memoised: sessions, IPs and devices repeat from order to order."""
    return int(stable_hash64(value))


def _ticker_key(ticker: str) -> int:
    """A ticker's key in the account Bloom filters: a stable hash, the same after a restart."""
    return _hash(ticker) >> 1  # non-negative int64


assert ACTIONS  # the action codes DecisionBlock encodes


def _label_may_act(label: Any, board: ControlBoard) -> bool:
    """Whether a label may release or freeze its account (docs/security.md, issue 21).

    Only a label the Kafka edge found signed (``authoritative``; in-process callers such
    as the simulator are trusted and pass plain records), and only one newer than the
    account's last control: a verdict given before a control cannot judge it, so a
    captured label re-sent later does nothing.
    """
    if not getattr(label, "authoritative", True):
        return False
    last = board.last_record("account", label.account_id)
    return last is None or label.ts > last["ts"]
