"""What the console reads, checked down to its leaves before it is folded in.

The registry schemas (streams/records.py) check each record's top-level fields;
the nested parts the pages and the rules read (a decision's reasons, a halt's
evidence, an audit record's before and after) are typed here with msgspec, so a
record like ``"reasons": [1, 2]`` or a reason whose value is text is skipped and
counted by the feed instead of killing it or the page that draws it.

>>> check_leaves("decisions", {"reasons": [{"code": "new_device", "value": 1}]})
>>> check_leaves("decisions", {"reasons": [1, 2]})
Traceback (most recent call last):
...
streams.schema.RecordError: reasons: Expected `object`, got `int` - at `$[0]`
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

from streams.schema import RecordError
from streams.topics import AUDIT, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS, FEEDBACK

__all__ = ["check_leaves"]


class Reason(msgspec.Struct):
    code: str
    value: float


class HaltEvidence(msgspec.Struct, forbid_unknown_fields=False):
    """What the ticker pages read of a halt's evidence (more may be there)."""

    accounts: list[str] = []
    risky_notional: float | None = None
    risky_buyers: int | None = None
    risky_buy_share: float | None = None
    distinct_buyers: int | None = None
    volume_x_adv: float | None = None
    window_s: float | None = None
    trigger_order_id: str | None = None
    halt_ts: int | None = None


_Object = dict[str, Any] | None
_LEAVES: dict[str, dict[str, Any]] = {
    DECISIONS: {"reasons": list[Reason]},
    CONTROLS_TICKERS: {"evidence": HaltEvidence | None},
    CONTROLS_ACCOUNTS: {"evidence": _Object},
    AUDIT: {"before": _Object, "after": _Object},
    # A label's source goes into audit records (``before``): unbounded, it could make every
    # audit record of its order too large to write, and so every action on it impossible.
    FEEDBACK: {"source": msgspec.Meta(max_length=256)},
}


def check_leaves(name: str, record: dict[str, Any]) -> None:
    """Raise RecordError naming the field if a nested part of ``record`` is not as typed."""
    for field, kind in _LEAVES.get(name, {}).items():
        value = record.get(field)
        try:
            if isinstance(kind, msgspec.Meta):
                msgspec.convert(value, Annotated[str, kind])
            else:
                msgspec.convert(value, kind)
        except msgspec.ValidationError as exc:
            raise RecordError(str(exc), field) from None
    if name == DECISIONS:
        for r in record["reasons"]:
            if not math.isfinite(r["value"]):
                raise RecordError(f"reason {r['code']!r} has a value that is not finite",
                                  "reasons")
