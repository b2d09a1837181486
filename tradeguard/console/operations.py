"""Operator actions: decide what to write, audit it, then write it, whatever the outcome.

:func:`plan` is pure: from the operator, the request and the console's view it
works out the permission, the control or label record to write and the audit
record, so every rule is testable without a broker. :class:`Operations`
carries a plan out on Kafka: the audit record first, signed and chained
(:mod:`tradeguard.console.audit`), and only once the broker has acknowledged
it, the control or label. An action whose audit record cannot be written does
not happen; a write that fails after its audit record is followed by a second
record saying ``failed``.

Records the console writes name the operator: ``source`` is
``console:<user>`` and ``evidence.operator`` holds user, role and how they
logged in (plus the approver under the two-person rule). Control records carry
their target's next ``seq`` and are signed with the control key as they are
sent, and so are labels: only a signed label may change an account
(streams/signing.py, docs/security.md).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException

from streams import topics
from streams.controls import AccountControl, TickerControl
from streams.records import ACCOUNT_CONTROL, AUDIT, FEEDBACK, TICKER_CONTROL
from streams.signing import CONTROL_TOPICS, ControlKeys, sign
from tradeguard.kafka.producer import RecordProducer
from tradeguard.console.access import ACTIONS, authorize, may_approve
from tradeguard.console.audit import AuditChain
from tradeguard.console.view import ConsoleView
from tradeguard.runtime.settings import Settings

__all__ = ["TARGET_KIND", "ActionError", "Operations", "Operator", "Plan", "Request", "audit_record", "plan"]

MODES = ("now", "propose", "approve", "withdraw")
TARGET_KIND = _KIND = {"release_halt": "ticker", "extend_halt": "ticker", "release_account": "account",
         "freeze_account": "account", "label_order": "order"}
_STATUS = {"done": 200, "proposed": 202, "withdrawn": 200, "denied": 403, "failed": 409}


class ActionError(ValueError):
    """The request itself is malformed (nothing was attempted); the message names the field."""


@dataclass(frozen=True)
class Operator:
    user: str
    role: str
    auth: str  # local | oidc
    remote_addr: str | None = None

    def identity(self) -> dict[str, str]:
        return {"user": self.user, "role": self.role, "auth": self.auth}


@dataclass(frozen=True)
class Request:
    """What the operator asked for, as the form sent it."""

    action: str
    target: str
    reason: str
    mode: str = "now"
    proposal_id: str | None = None
    label: str | None = None  # label_order: fraud | legit
    minutes: int | None = None  # extend_halt: by how long

    def check(self) -> "Request":
        if self.action not in ACTIONS:
            raise ActionError(f"action: must be one of {list(ACTIONS)}, got {self.action!r}")
        if self.mode not in MODES:
            raise ActionError(f"mode: must be one of {list(MODES)}, got {self.mode!r}")
        if not self.target or len(self.target) > 256:
            raise ActionError("target: must be 1-256 characters")
        if not 3 <= len(self.reason.strip()) <= 2000:
            raise ActionError("reason: say why in 3 to 2000 characters; it goes into the audit "
                              "trail")
        if self.mode in ("approve", "withdraw") and not self.proposal_id:
            raise ActionError(f"proposal_id: required to {self.mode} a proposal")
        if self.action == "label_order" and self.label not in ("fraud", "legit"):
            raise ActionError(f"label: must be fraud or legit, got {self.label!r}")
        if self.action == "extend_halt" and self.mode == "now" and not (
                isinstance(self.minutes, int) and 1 <= self.minutes <= 1440):
            raise ActionError(f"minutes: must be a whole number 1..1440, got {self.minutes!r}")
        return self


@dataclass
class Plan:
    """What to write: ``writes`` (topic, record) first, then ``audit``; ``status`` for HTTP."""

    audit: dict[str, Any]
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.audit["outcome"]

    @property
    def status(self) -> int:
        return _STATUS[self.outcome]


def audit_record(*, actor: str, role: str | None, auth: str | None, action: str,
                 target_kind: str, target: str, reason: str, outcome: str,
                 detail: str | None = None, before: dict | None = None,
                 after: dict | None = None, proposal_id: str | None = None,
                 proposed_by: str | None = None, remote_addr: str | None = None,
                 now_ms: int) -> dict[str, Any]:
    """One audit record, checked against the contract."""
    record = {"audit_id": uuid.uuid4().hex, "ts": now_ms, "actor": actor[:128],
              "actor_role": role, "auth": auth, "action": action, "target_kind": target_kind,
              "target": target, "reason": reason.strip()[:2000], "outcome": outcome,
              "detail": detail, "before": before, "after": after, "proposal_id": proposal_id,
              "proposed_by": proposed_by, "remote_addr": remote_addr}
    AUDIT.validate(record)
    return record


def _state(view: ConsoleView, req: Request) -> tuple[dict | None, dict | None]:
    """(the state the permission depends on, the ``before`` of the audit record)."""
    if _KIND[req.action] == "ticker":
        c = view.ticker_control(req.target)
        return c, c
    if _KIND[req.action] == "account":
        c = view.account_control(req.target)
        return c, c
    entry = view.order(req.target)
    if entry is None:
        return None, None
    order, decision = entry["order"], entry["decision"]
    account = (order or decision or {}).get("account_id")
    control = view.account_control(account) if account else None
    before = {"account_id": account, "label": entry["label"], "account_control": control,
              "decision": decision and {k: decision[k] for k in ("action", "score", "reasons")}}
    return control, before


def _precondition(view: ConsoleView, req: Request, before: dict | None, now_ms: int) -> str:
    """Why the action cannot apply to the target as it is now ('' when it can)."""
    if req.action in ("release_halt", "extend_halt"):
        if view.halt_in_force(req.target, now_ms) is None:
            return f"no buy halt is in force on {req.target}"
    elif req.action == "release_account":
        if before is None or before["action"] == "release":
            return f"account {req.target} is under no step-up or freeze"
    elif req.action == "freeze_account":
        if before is not None and before["action"] == "freeze":
            return f"account {req.target} is frozen already"
    elif req.action == "label_order":
        if before is None or not before["account_id"]:
            return (f"order {req.target} is not among the recent orders this console holds; "
                    "label it from its account's page")
    return ""


def _record(view: ConsoleView, req: Request, op: Operator, before: dict | None, audit_id: str,
            now_ms: int, extra: dict | None = None) -> tuple[str, dict[str, Any]]:
    """The control or label record that carries out ``req``; a control follows the one in
    force on the view's board (its ``seq``), so it supersedes exactly that one."""
    evidence = {"operator": op.identity(), "audit_id": audit_id, **(extra or {})}
    kind = _KIND[req.action]
    seq = view.board.next_seq(kind, req.target) if kind in ("ticker", "account") else None
    source = f"console:{op.user}"
    reason = req.reason.strip()
    if req.action == "release_halt":
        return topics.CONTROLS_TICKERS, TICKER_CONTROL.validate(TickerControl(
            ticker=req.target, action="release", reason=reason,
            evidence={**evidence, "halt_ts": before["ts"]}, expires_at=None,
            source=source, ts=now_ms).record(seq=seq))
    if req.action == "extend_halt":
        until = max(before["expires_at"] or now_ms, now_ms) + req.minutes * 60_000
        kept = {k: v for k, v in before.items() if k != "signature"}
        return topics.CONTROLS_TICKERS, TICKER_CONTROL.validate({
            **kept, "reason": reason, "expires_at": until, "source": source, "ts": now_ms,
            "seq": seq,
            "evidence": {**(before["evidence"] or {}), **evidence,
                         "extended_from": before["expires_at"], "halt_reason": before["reason"]}})
    if req.action in ("release_account", "freeze_account"):
        return topics.CONTROLS_ACCOUNTS, ACCOUNT_CONTROL.validate(AccountControl(
            account_id=req.target, action=req.action.split("_")[0], reason=reason,
            evidence={**evidence, "previous": before and before["action"]},
            source=source, ts=now_ms).record(seq=seq))
    return topics.FEEDBACK, FEEDBACK.validate({
        "account_id": before["account_id"], "order_id": req.target, "label": req.label,
        "source": source, "ts": now_ms})


def plan(view: ConsoleView, op: Operator, req: Request, now_ms: int, *, two_person: bool = True,
         proposal_ttl_ms: int = 3_600_000) -> Plan:
    """Decide what ``op`` asking ``req`` leads to; nothing is written here.

    Raises :class:`ActionError` for a malformed request (nothing to audit);
    everything else, denials included, comes back as a plan with its audit record.
    """
    req.check()
    state, before = _state(view, req)

    def audit(outcome: str, detail: str | None, after: dict | None = None, **kw) -> dict:
        return audit_record(actor=op.user, role=op.role, auth=op.auth, action=req.action,
                            target_kind=_KIND[req.action], target=req.target, reason=req.reason,
                            outcome=outcome, detail=detail, before=before, after=after,
                            remote_addr=op.remote_addr, now_ms=now_ms, **kw)

    if req.mode in ("approve", "withdraw"):
        return _settle(view, op, req, before, audit, now_ms, proposal_ttl_ms)
    permission = authorize(op.role, req.action, state, label=req.label, two_person=two_person)
    if permission.verdict == "deny" or (req.mode == "now" and permission.verdict == "propose"):
        hint = "; propose it for a second operator's approval instead" if (
            permission.verdict == "propose") else ""
        return Plan(audit("denied", permission.reason + hint))
    if req.mode == "propose" and req.action not in ("release_halt", "release_account"):
        return Plan(audit("denied", f"{req.action} is done at once, never proposed"))
    if problem := _precondition(view, req, before, now_ms):
        return Plan(audit("failed", problem))
    a = audit("proposed" if req.mode == "propose" else "done", None)
    topic, record = _record(view, req, op, before, a["audit_id"], now_ms)
    if req.mode == "propose":
        a.update(proposal_id=a["audit_id"], proposed_by=op.user, after=record,
                 detail="waits for a second operator's approval")
        return Plan(a)
    a.update(after=record, detail=f"wrote {req.action} to {topic}")
    return Plan(a, [(topic, record)])


def _settle(view, op, req, before, audit, now_ms, ttl_ms) -> Plan:
    """Approve or withdraw a pending proposal."""
    proposal = view.proposal(req.proposal_id)
    if proposal is None or (proposal["action"], proposal["target"]) != (req.action, req.target):
        return Plan(audit("failed", f"no pending proposal {req.proposal_id} to {req.action} "
                                    f"{req.target}", proposal_id=req.proposal_id))
    by = proposal["proposed_by"]
    if req.mode == "withdraw":
        if op.user != by and op.role != "supervisor":
            return Plan(audit("denied", "only the proposer or a supervisor may withdraw it",
                              proposal_id=req.proposal_id, proposed_by=by))
        return Plan(audit("withdrawn", None, proposal_id=req.proposal_id, proposed_by=by))
    permission = may_approve(op.role, op.user, by)
    if not permission.allowed:
        return Plan(audit("denied", permission.reason, proposal_id=req.proposal_id,
                          proposed_by=by))
    if now_ms - proposal["ts"] > ttl_ms:
        return Plan(audit("failed", "the proposal lapsed; propose it again",
                          proposal_id=req.proposal_id, proposed_by=by))
    if before != proposal["before"]:
        return Plan(audit("failed", "the target's state changed since it was proposed; "
                                    "propose it again", proposal_id=req.proposal_id,
                          proposed_by=by))
    if problem := _precondition(view, req, before, now_ms):
        return Plan(audit("failed", problem, proposal_id=req.proposal_id, proposed_by=by))
    a = audit("done", None, proposal_id=req.proposal_id, proposed_by=by)
    proposer = {"user": by, "role": proposal["actor_role"], "auth": proposal["auth"],
                "reason": proposal["reason"]}
    topic, record = _record(view, Request(req.action, req.target, proposal["reason"],
                                          label=req.label), op, before, a["audit_id"], now_ms,
                            {"proposed_by": proposer, "proposal_id": req.proposal_id})
    a.update(after=record, detail=f"approved {by}'s proposal; wrote {req.action} to {topic}")
    return Plan(a, [(topic, record)])


#: Topics whose records the console signs: controls, and labels (which may change an account).
SIGNED_TOPICS = (*CONTROL_TOPICS, topics.FEEDBACK)
_CHAIN = ("writer", "chain_seq", "prev_hash", "signature")


class Operations:
    """Carries plans out on Kafka (audit first) and folds what was written into the view."""

    def __init__(self, settings: Settings, view: ConsoleView, lock: threading.Lock,
                 writer: str | None = None) -> None:
        self.settings, self.view, self.lock = settings, view, lock
        self.keys = ControlKeys.from_settings(settings)  # signs controls, labels, audit
        # One chain per console process: a restarted console starts a new one.
        self.chain = AuditChain(writer or f"console:{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
                                self.keys)
        self._producer: RecordProducer | None = None
        self._send_lock = threading.Lock()

    def _send(self, topic: str, record: dict[str, Any]) -> None:
        if self._producer is None:
            self._producer = RecordProducer(self.settings, **{"linger.ms": 0})
        try:
            self._producer.send(topic, record)
            self._producer.flush(10.0)
        except (KafkaException, BufferError) as exc:
            self._producer = None  # its error list stays with it; the next action starts clean
            raise KafkaException(str(exc)) from None

    def _audit(self, audit: dict[str, Any]) -> dict[str, Any]:
        """Seal, write and acknowledge one audit record (KafkaException if it is not on Kafka)."""
        sealed = self.chain.seal({k: v for k, v in audit.items() if k not in _CHAIN})
        self._send(topics.AUDIT, sealed)
        self.chain.advance(sealed)
        return sealed

    def execute(self, p: Plan) -> Plan:
        """Write the plan's audit record, then (once acknowledged) its records.

        Raises KafkaException when the audit record cannot be written: then nothing
        was done. A record that fails after it gets a second audit record, ``failed``.
        """
        p = self._signed(p)
        with self._send_lock:
            audited = self._audit(p.audit)
            written = [audited]
            try:
                for topic, record in p.writes:
                    self._send(topic, record)
                done = Plan(audited, p.writes)
            except KafkaException as exc:
                failed = self._audit(AUDIT.validate({
                    **p.audit, "audit_id": uuid.uuid4().hex, "outcome": "failed", "after": None,
                    "detail": f"audit {audited['audit_id']} recorded it, but it could not be "
                              f"written to Kafka: {exc}"}))
                written.append(failed)
                done = Plan(failed)
        now = int(time.time() * 1000)
        with self.lock:
            for topic, record in done.writes:
                self.view.absorb(topic, record, now)
            for a in written:
                self.view.absorb(topics.AUDIT, a, now)
        return done

    def _signed(self, p: Plan) -> Plan:
        """Controls and labels signed; the audit's ``after`` is exactly what is sent."""
        if not any(topic in SIGNED_TOPICS for topic, _ in p.writes):
            return p
        writes = [(t, sign(r, self.keys) if t in SIGNED_TOPICS else r) for t, r in p.writes]
        after = writes[-1][1] if p.audit.get("after") is not None else None
        return Plan({**p.audit, "after": after}, writes)

    def record(self, audit: dict[str, Any]) -> None:
        """Write an audit record that goes with no other write (logins, refusals)."""
        self.execute(Plan(audit))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5.0)
