"""How the world answers the engine: customers answering step-ups, analysts reviewing stops.

The simulator's streams are fixed before the engine sees them; these two
responders close the loop in an in-process run (``tradeguard scorecard``,
``tradeguard evaluate --in-process``). They read what the engine published and
the ground truth, and return new input records stamped in event time, drawn
from their own random streams (derived from the scenario seed and their name,
as ``generate`` derives every part of the world), so the same session, seed and
engine give the same answers.

- :class:`CustomerResponses`: an account control ``step_up`` raised on an order
  is answered by whoever holds that order's session, from that order's context; one
  raised on a login (``evidence.login``), by whoever made that login, from its context.
  A legitimate customer passes (``mfa_challenge_passed``) with
  ``legit_pass_rate``, else never answers (the engine's timeout). An attacker
  passes only where the broker's factor is ``otp`` and the technique relays a
  fresh one-time code live (phishing, AiTM), with ``relay_pass_rate``. Against a
  passkey, and always for an infostealer (no live victim to relay from), the
  attacker tries and fails (``mfa_challenge_failed``) with
  ``attacker_try_rate``, else gives up without answering.
- :class:`AnalystDesk`: every order the engine held or blocked, and every
  account it stepped up or froze, is reviewed ``review_delay_s`` later
  (x U(1 - jitter, 1 + jitter)) at ``reviews_per_hour`` at most (the rest wait,
  in the order they fell due), and labelled from the ground truth, wrong with
  ``analyst_error_rate``: a ``feedback`` record from ``analyst-<k>``.

>>> from tradeguard.simulator.scenario import parse_scenario
>>> from tradeguard.simulator.generate import generate
>>> session = generate(parse_scenario({"seed": 1, "session": {"duration_s": 60},
...     "population": {"index_holders": {"count": 5}, "active_traders": {"count": 5},
...                    "day_traders": {"count": 0}}}))
>>> order = next(session.of("orders"))
>>> customers = CustomerResponses(session, ResponsesConfig())
>>> [(t, r["event"], r["device_id"] == order["device_id"]) for t, r in customers.answer([
...     {"account_id": order["account_id"], "action": "step_up", "source": "engine",
...      "evidence": {"order_id": order["order_id"]}, "ts": order["ts"]}])]
[('auth.events', 'mfa_challenge_passed', True)]
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from streams.topics import AUTH_EVENTS, FEEDBACK, ORDERS
from tradeguard.simulator.generate import Session
from tradeguard.simulator.scenario import ResponsesConfig
from tradeguard.simulator.truth import TakenOverAccount

__all__ = ["AnalystDesk", "CustomerResponses", "Review", "ResponsesConfig", "responses_rng"]

#: Techniques whose phishing page relays a fresh one-time code while the victim types it.
RELAYS_CODES = frozenset({"phishing", "aitm"})
_ENGINE = "engine"


def responses_rng(seed: int, part: str) -> np.random.Generator:
    """The generator of one responder: the scenario seed and the responder's name, nothing else."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(part.encode())]))


class _Truth:
    """What the responders look up: orders by id, logins' networks, who took over what."""

    def __init__(self, session: Session) -> None:
        truth = session.truth
        self.orders = {r["order_id"]: r for r in session.of(ORDERS)}
        self.fraud = truth.fraud_order_ids
        self.accomplice_orders = {i for a in truth.accomplices for i in a.order_ids}
        self.accomplices = {a.account_id for a in truth.accomplices}
        self.taken: dict[str, TakenOverAccount] = {a.account_id: a for a in truth.accounts}
        self.network: dict[tuple[str, str], tuple[str | None, int | None]] = {}
        self.mfa_failed_sessions = {r["session_id"] for r in session.of(AUTH_EVENTS)
                                    if r["event"] == "mfa_challenge_failed" and r["session_id"]}
        for r in session.of(AUTH_EVENTS):
            self.network.setdefault((r["account_id"], r["ip"]), (r["country"], r["asn"]))

    def order(self, order_id: Any, what: str) -> dict[str, Any]:
        try:
            return self.orders[order_id]
        except KeyError:
            raise ValueError(f"{what}: evidence.order_id {order_id!r} is not an order of the "
                             "session") from None

    def attacker_of(self, order: dict[str, Any]) -> TakenOverAccount | None:
        """The takeover behind ``order``: a fraud order, or one from the attacker's context."""
        taken = self.taken.get(order["account_id"])
        if taken is None:
            return None
        if order["order_id"] in self.fraud or (order.get("ip") == taken.attacker_ip
                                               and order.get("device_id")
                                               == taken.attacker_device_id):
            return taken
        return None


class CustomerResponses:
    """Answers to the engine's step-ups, from whoever holds the session of the order behind each."""

    def __init__(self, session: Session, cfg: ResponsesConfig,
                 rng: np.random.Generator | None = None) -> None:
        self.cfg = cfg
        self.truth = _Truth(session)
        self.rng = rng if rng is not None else responses_rng(session.seed, "responses:customers")
        self.answered = 0
        self.silent = 0

    def answer(self, account_controls: Iterable[dict[str, Any]]) -> list[tuple[str, dict]]:
        """The auth events answering each engine ``step_up`` in ``account_controls``."""
        out = []
        for control in account_controls:
            if control["action"] != "step_up" or control.get("source") != _ENGINE:
                continue
            evidence = control.get("evidence") or {}
            if evidence.get("order_id") is None and evidence.get("login"):
                # A step-up raised on a login: whoever made that login answers, from its
                # context, out of band (a passkey prompt, not in the session: session None).
                # A login whose own factor failed is the attacker's (the broker's MFA
                # stopped a right password): they do not answer.
                login = evidence["login"]
                if login.get("session_id") in self.truth.mfa_failed_sessions:
                    self.silent += 1
                    continue
                order = {"order_id": None, "account_id": control["account_id"],
                         **login, "session_id": None}
            else:
                order = self.truth.order(evidence.get("order_id"),
                                         f"step_up of {control['account_id']}")
            event = self._outcome(self.truth.attacker_of(order))
            delay_ms = int(1000 * self.rng.uniform(self.cfg.answer_min_s, self.cfg.answer_max_s))
            if event is None:
                self.silent += 1
                continue
            self.answered += 1
            out.append((AUTH_EVENTS, self._auth(order, event, control["ts"] + delay_ms)))
        return out

    def _outcome(self, attacker: TakenOverAccount | None) -> str | None:
        """``mfa_challenge_passed``, ``mfa_challenge_failed`` or None (no answer)."""
        cfg, draw = self.cfg, self.rng.random()
        if attacker is None:
            return "mfa_challenge_passed" if draw < cfg.legit_pass_rate else None
        if cfg.factor == "otp" and attacker.technique in RELAYS_CODES:
            return "mfa_challenge_passed" if draw < cfg.relay_pass_rate else None
        return "mfa_challenge_failed" if draw < cfg.attacker_try_rate else None

    def _auth(self, order: dict[str, Any], event: str, ts: int) -> dict[str, Any]:
        country, asn = self.truth.network.get((order["account_id"], order.get("ip")),
                                              (None, None))
        taken = self.truth.attacker_of(order)
        if taken is not None and order.get("ip") == taken.attacker_ip:
            country, asn = taken.attacker_country, taken.attacker_asn
        return {"account_id": order["account_id"], "event": event,
                "session_id": order.get("session_id"), "ip": order.get("ip"),
                "device_id": order.get("device_id"), "user_agent": order.get("user_agent"),
                "country": country, "asn": asn, "ts": ts}


@dataclass(frozen=True)
class Review:
    """One item on the analysts' queue: an order (``order_id``) or an account (order_id None)."""

    account_id: str
    order_id: str | None
    raised_ts: int  # event time of what is reviewed (the decision's order, the control)
    due_ts: int     # when it reaches an analyst, capacity permitting


class AnalystDesk:
    """Reviews of what the engine stopped, labelled from the ground truth with a small error rate.

    :meth:`queue` turns decisions and account controls into :class:`Review` items
    (each order and each account at most once); the in-process runner holds them
    until they fall due and calls :meth:`review`, which either labels one now or
    says when an analyst is next free (capacity ``reviews_per_hour``).
    """

    def __init__(self, session: Session, cfg: ResponsesConfig,
                 rng: np.random.Generator | None = None) -> None:
        self.cfg = cfg
        self.truth = _Truth(session)
        self.rng = rng if rng is not None else responses_rng(session.seed, "responses:analysts")
        self._seen_orders: set[str] = set()
        self._seen_accounts: set[str] = set()
        self._next_free = -1
        self._spacing_ms = 3_600_000 / cfg.reviews_per_hour
        self.reviewed = 0
        self.mislabelled = 0

    def queue(self, decisions: Iterable[dict[str, Any]],
              account_controls: Iterable[dict[str, Any]]) -> list[Review]:
        """New reviews for the stopped orders and engine account controls not yet queued."""
        out = []
        for d in decisions:
            if d["action"] in ("hold", "block") and d["order_id"] not in self._seen_orders:
                self._seen_orders.add(d["order_id"])
                out.append(self._review(d["account_id"], d["order_id"], d["order_ts"]))
        for c in account_controls:
            if (c["action"] in ("step_up", "freeze") and c.get("source") == _ENGINE
                    and c["account_id"] not in self._seen_accounts):
                self._seen_accounts.add(c["account_id"])
                out.append(self._review(c["account_id"], None, c["ts"]))
        return out

    def _review(self, account_id: str, order_id: str | None, ts: int) -> Review:
        jitter = self.cfg.review_jitter
        delay = self.cfg.review_delay_s * self.rng.uniform(1 - jitter, 1 + jitter)
        return Review(account_id, order_id, ts, ts + int(1000 * delay))

    def review(self, item: Review, now: int) -> tuple[str, dict[str, Any]] | int:
        """The label of ``item`` at event time ``now``, or the time an analyst is next free."""
        if now < self._next_free:
            return self._next_free
        self._next_free = now + int(self._spacing_ms)
        label = self.label(item, now)
        wrong = self.rng.random() < self.cfg.analyst_error_rate
        if wrong:
            label = "legit" if label == "fraud" else "fraud"
            self.mislabelled += 1
        analyst = self.reviewed % self.cfg.analysts_on_shift
        self.reviewed += 1
        return (FEEDBACK, {"account_id": item.account_id, "order_id": item.order_id,
                             "label": label, "source": f"analyst-{analyst}", "ts": now})

    def label(self, item: Review, now: int) -> str:
        """The truth: a fraud or accomplice order; an account taken over (by ``now``) or a mule.

        Accomplices' orders are market manipulation, not unauthorized access, but
        an analyst who sees them labels them fraud all the same.
        """
        t = self.truth
        if item.order_id is not None:
            fraud = item.order_id in t.fraud or item.order_id in t.accomplice_orders
        else:
            taken = t.taken.get(item.account_id)
            fraud = item.account_id in t.accomplices or (taken is not None
                                                         and taken.access_ts <= now)
        return "fraud" if fraud else "legit"
