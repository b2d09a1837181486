"""A tamper-evident audit trail: every record signed and hash-chained per writer.

Each console process (and each run of the break-glass CLI) is one *writer*:
its records carry ``writer``, ``chain_seq`` (1, 2, 3, ...) and ``prev_hash``,
the SHA-256 of its previous record's canonical JSON (signature included), and
are signed with the control key (streams/signing.py). Anyone can read the
topic, no one without the key can write a record that verifies, and
:func:`verify` finds, per writer, a record altered (bad signature), a record
inserted or missing (the chain breaks) and one written twice.

>>> from streams.signing import ControlKeys
>>> chain = AuditChain("console-a", ControlKeys.development())
>>> rs = []
>>> for i in range(3):  # each written and acknowledged before the next is sealed
...     rs.append(chain.seal({"audit_id": str(i), "action": "login"}))
...     chain.advance(rs[-1])
>>> verify(rs, ControlKeys.development()).ok
True
>>> [p.kind for p in verify([rs[0], rs[2]], ControlKeys.development()).problems]
['gap']
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

import rfc8785

from streams.signing import ControlKeys, SignatureError, check, sign

__all__ = ["AuditChain", "Problem", "Verdict", "record_hash", "verify"]


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the record's RFC 8785 JSON, signature included: what the next one names."""
    return hashlib.sha256(rfc8785.dumps(record)).hexdigest()


class AuditChain:
    """One writer's chain: :meth:`seal` a record, :meth:`advance` once the broker has it.

    The chain moves on only when a record is acknowledged, so a record the broker
    refused leaves no hole; one written but not acknowledged (a timeout) shows in
    ``audit verify`` as two records at one position, never as nothing.
    """

    def __init__(self, writer: str, keys: ControlKeys) -> None:
        self.writer, self.keys = writer, keys
        self.seq, self.prev_hash = 0, None
        self.lock = threading.Lock()  # held from seal to advance by whoever writes

    def seal(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` placed next in this chain and signed (not yet written)."""
        body = {**record, "writer": self.writer, "chain_seq": self.seq + 1,
                "prev_hash": self.prev_hash}
        return sign(body, self.keys)

    def advance(self, sealed: dict[str, Any]) -> None:
        """``sealed`` is on the topic: the next record follows it."""
        self.seq, self.prev_hash = sealed["chain_seq"], record_hash(sealed)


@dataclass(frozen=True)
class Problem:
    kind: str  # forged, gap, insertion, duplicate, unchained
    writer: str | None
    chain_seq: int | None
    audit_id: str | None
    detail: str

    def __str__(self) -> str:
        return (f"{self.kind}: writer {self.writer} #{self.chain_seq} (audit {self.audit_id}): "
                f"{self.detail}")


@dataclass
class Verdict:
    records: int = 0
    writers: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(records: Iterable[dict[str, Any]], keys: ControlKeys, *,
           partial_start: bool = False) -> Verdict:
    """Check signatures and each writer's chain over ``records`` (any order).

    ``partial_start``: the records begin past the topic's start (retention), so a
    writer's first record seen may follow one no longer held.
    """
    out = Verdict()
    last: dict[str, dict[str, Any]] = {}
    # The audit topic is keyed by target, so one writer's records span partitions: its
    # chain is checked in chain order (sorted is stable: two at one position keep theirs).
    records = sorted(records, key=lambda r: (str(r.get("writer")), _position(r)))
    for r in records:
        out.records += 1
        writer, seq, aid = r.get("writer"), r.get("chain_seq"), r.get("audit_id")
        try:
            check(r, keys)
        except SignatureError as exc:
            out.problems.append(Problem("forged", writer, seq, aid, str(exc)))
            continue
        if not isinstance(writer, str) or not isinstance(seq, int):
            out.problems.append(Problem("unchained", writer, seq, aid,
                                        "signed but carries no writer or chain_seq"))
            continue
        prev = last.get(writer)
        if prev is None:
            if seq != 1 and not partial_start:
                out.problems.append(Problem("gap", writer, seq, aid,
                                            f"the writer's first record is #{seq}, not #1"))
            elif seq == 1 and r.get("prev_hash") is not None:
                out.problems.append(Problem("insertion", writer, seq, aid,
                                            "#1 names a previous record"))
        elif seq == prev["chain_seq"]:
            out.problems.append(Problem("duplicate", writer, seq, aid,
                                        f"two records at #{seq} (audit {prev.get('audit_id')})"))
            continue
        elif seq < prev["chain_seq"]:
            out.problems.append(Problem("insertion", writer, seq, aid,
                                        f"#{seq} after #{prev['chain_seq']}"))
            continue
        elif seq > prev["chain_seq"] + 1:
            out.problems.append(Problem("gap", writer, seq, aid,
                                        f"#{prev['chain_seq'] + 1}..#{seq - 1} missing"))
        elif r.get("prev_hash") != record_hash(prev):
            out.problems.append(Problem("insertion", writer, seq, aid,
                                        f"does not follow #{prev['chain_seq']} (hash differs)"))
        last[writer] = r
    out.writers = len(last)
    return out


def _position(record: dict[str, Any]) -> int:
    seq = record.get("chain_seq")
    return seq if isinstance(seq, int) else -1
