"""Who may do what in the console: roles, the rules per action, and the two-person rule.

Pure functions of the operator's role and the target's current state; the web
layer asks :func:`authorize` before anything is written, and the answer (with
its reason) goes into the audit record whatever it is.

Roles, least to most trusted: ``viewer`` sees everything and changes nothing;
``analyst`` labels orders, extends halts, freezes accounts and releases
step-ups; ``supervisor`` may also release halts and freezes at once. An
analyst may instead *propose* such a release, which takes effect when a second
operator (analyst or supervisor, not the proposer) approves it.

>>> authorize("analyst", "release_halt", {"action": "halt_buys"}).verdict
'propose'
>>> authorize("supervisor", "release_halt", {"action": "halt_buys"}).verdict
'allow'
>>> authorize("viewer", "label_order", None, label="fraud").reason
'viewers may only look; label_order needs an analyst'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeguard.console.users import ROLES

__all__ = ["ACTIONS", "Permission", "authorize", "may_approve", "rank"]

#: Operator actions that change something, as named in the audit record.
ACTIONS = ("release_halt", "extend_halt", "release_account", "freeze_account", "label_order")


def rank(role: str | None) -> int:
    """0 for no role, then 1 (viewer), 2 (analyst), 3 (supervisor)."""
    return ROLES.index(role) + 1 if role in ROLES else 0


@dataclass(frozen=True)
class Permission:
    """``allow``: do it now; ``propose``: only as a proposal for a second person; ``deny``."""

    verdict: str
    reason: str

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def _needs_second_person(action: str, state: dict[str, Any] | None, label: str | None) -> str:
    """Why this action reopens a door the engine closed ('' when it does not)."""
    if action == "release_halt":
        return "releasing a halt"
    if action == "release_account" and state and state.get("action") == "freeze":
        return "releasing a frozen account"
    if action == "label_order" and label == "legit" and state and state.get("action") == "freeze":
        # The engine releases an account's control when one of its orders is labelled
        # legit, so this label is a release of the freeze by another name.
        return "labelling an order of a frozen account legit (the engine then releases it)"
    return ""


def authorize(role: str | None, action: str, state: dict[str, Any] | None, *,
              label: str | None = None, two_person: bool = True) -> Permission:
    """May an operator with ``role`` do ``action`` to a target whose control is ``state``?

    ``state`` is the target's latest control record (a ticker's halt or an
    account's step-up/freeze), or None when it has none.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {list(ACTIONS)}")
    if rank(role) < rank("analyst"):
        who = f"{role}s may only look" if role else "not logged in"
        return Permission("deny", f"{who}; {action} needs an analyst")
    sensitive = _needs_second_person(action, state, label)
    if not sensitive or rank(role) >= rank("supervisor"):
        return Permission("allow", f"{role} may {action}")
    if two_person and label is None:
        return Permission("propose", f"{sensitive} needs a supervisor, or a second operator to "
                                     "approve an analyst's proposal")
    return Permission("deny", f"{sensitive} needs a supervisor")


def may_approve(role: str | None, user: str, proposed_by: str) -> Permission:
    """The two-person rule: any analyst or supervisor except the one who proposed it."""
    if rank(role) < rank("analyst"):
        return Permission("deny", "approving a proposal needs an analyst or a supervisor")
    if user == proposed_by:
        return Permission("deny", "the two-person rule: a proposal needs someone other than "
                                  "its proposer to approve it")
    return Permission("allow", f"{role} {user} approves {proposed_by}'s proposal")
