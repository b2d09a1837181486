"""Correlation by order_id: orders waiting for the engine, answers awaiting its word, repeats.

One lock guards three tables. An order is *pending* from ``open`` until its
submitter ``close``s it; the reader thread ``deliver``s each decision record it
reads. Whichever comes first decides what happens to the other:

- a decision delivered to a pending order is its answer (the submitter wakes);
- a submitter closing without one hands over the gateway's own answer, which
  then *awaits* the engine's late decision for reconciliation;
- an order_id already answered or reconciled is *seen*: a repeated decision
  (an engine restart re-decides orders) is a ``duplicate`` and is dropped;
- anything else is another gateway's order: ``foreign``.

So every order gets exactly one answer and every late decision is matched at
most once, whatever the interleaving of threads.

>>> ledger = Ledger()
>>> slot = ledger.open("o-1", wake=lambda: None)
>>> ledger.deliver({"order_id": "o-1", "action": "hold"}).kind
'answer'
>>> ledger.close(slot, gateway_answer="fallback")["action"]
'hold'
>>> ledger.deliver({"order_id": "o-1", "action": "hold"}).kind
'duplicate'
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

__all__ = ["Delivery", "Ledger", "OrderInFlight", "Slot"]

A = TypeVar("A")  # the gateway's own answer (a GatewayDecision in the client)


class OrderInFlight(ValueError):
    """An order_id was submitted again while the first one is still open or unreconciled."""


@dataclass(eq=False)
class Slot:
    """One pending order: the engine's record once it arrives, and how to wake its submitter."""

    order_id: str
    wake: Callable[[], None]
    record: dict[str, Any] | None = None


@dataclass(frozen=True)
class Delivery(Generic[A]):
    """What one decision record turned out to be."""

    kind: str  # answer | late | duplicate | foreign | invalid
    slot: Slot | None = None  # answer: the order it answered
    gateway_answer: A | None = None  # late: what the gateway had answered
    error: Exception | None = None  # invalid: what is wrong with the record


@dataclass
class Ledger(Generic[A]):
    """The tables, bounded: ``remember`` seen order_ids, answers awaiting the engine for
    ``reconcile_s`` seconds (then they are given up as unreconciled)."""

    remember: int = 200_000
    reconcile_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _pending: dict[str, Slot] = field(default_factory=dict, init=False)
    _awaiting: OrderedDict[str, tuple[float, A]] = field(default_factory=OrderedDict, init=False)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict, init=False)
    _overflow: list[A] = field(default_factory=list, init=False)  # pushed out by ``remember``
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def open(self, order_id: str, wake: Callable[[], None]) -> Slot:
        """Start waiting for ``order_id``; raises OrderInFlight if it is already known."""
        slot = Slot(order_id, wake)
        with self._lock:
            if self._knows_locked(order_id):
                raise OrderInFlight(f"order_id {order_id!r} was already submitted; every order "
                                    "needs its own order_id")
            self._pending[order_id] = slot
        return slot

    def deliver(self, record: dict[str, Any],
                check: Callable[[dict[str, Any]], Any] | None = None) -> Delivery[A]:
        """Match one decision record read from the engine (reader thread).

        ``check`` validates the record if it concerns one of our orders (others'
        records are not our business); a ValueError from it makes it ``invalid``.
        """
        order_id = record["order_id"]
        if check is not None and self._knows(order_id):
            try:
                check(record)
            except ValueError as exc:
                return Delivery("invalid", error=exc)
        with self._lock:
            slot = self._pending.get(order_id)
            if slot is not None and slot.record is None:
                slot.record = record
                self._mark_seen(order_id)
                found: Delivery[A] = Delivery("answer", slot=slot)
            elif slot is not None:
                found = Delivery("duplicate")
            elif order_id in self._awaiting:
                _, answer = self._awaiting.pop(order_id)
                self._mark_seen(order_id)
                found = Delivery("late", gateway_answer=answer)
            elif order_id in self._seen:
                found = Delivery("duplicate")
            else:
                found = Delivery("foreign")
        if found.kind == "answer":
            slot.wake()  # outside the lock: an asyncio wake schedules onto another loop
        return found

    def close(self, slot: Slot, gateway_answer: A | None) -> dict[str, Any] | None:
        """The submitter stops waiting: the engine's record if it came, else None.

        With no record, ``gateway_answer`` (what the gateway answers instead) waits
        for the engine's late decision; pass None for an order that never reached
        the broker, which the engine will not decide.
        """
        with self._lock:
            del self._pending[slot.order_id]
            if slot.record is not None:
                return slot.record
            if gateway_answer is not None:
                self._awaiting[slot.order_id] = (self.clock() + self.reconcile_s, gateway_answer)
                while len(self._awaiting) > self.remember:
                    order_id, (_, oldest) = self._awaiting.popitem(last=False)
                    self._mark_seen(order_id)
                    self._overflow.append(oldest)
            return None

    def abandon(self, slot: Slot) -> bool:
        """Forget an order whose submitter stopped without an answer; False if already closed.

        Its decision, if the engine still makes one, then counts as a duplicate.
        """
        with self._lock:
            if self._pending.pop(slot.order_id, None) is None:
                return False
            self._mark_seen(slot.order_id)
            return True

    def expire(self) -> list[A]:
        """Give up the answers whose engine decision has not come within ``reconcile_s``
        (or that more than ``remember`` newer ones pushed out)."""
        now = self.clock()
        with self._lock:
            given_up, self._overflow = self._overflow, []
            while self._awaiting:
                order_id, (until, answer) = next(iter(self._awaiting.items()))
                if until > now:
                    break
                del self._awaiting[order_id]
                self._mark_seen(order_id)
                given_up.append(answer)
        return given_up

    def counts(self) -> dict[str, int]:
        """How many orders are pending and how many gateway answers await the engine."""
        with self._lock:
            return {"pending": len(self._pending), "awaiting": len(self._awaiting)}

    def _knows(self, order_id: str) -> bool:
        with self._lock:
            return self._knows_locked(order_id)

    def _knows_locked(self, order_id: str) -> bool:
        return order_id in self._pending or order_id in self._awaiting or order_id in self._seen

    def _mark_seen(self, order_id: str) -> None:
        self._seen[order_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
