"""Every output of an in-process run, in a canonical order, for comparing two runs: within a
batch the core emits partition by partition, so only the sorted lists are comparable."""

from __future__ import annotations

from typing import Any, Iterable

import orjson

from tradeguard.core.partition import Outputs


def canonical(outputs: Iterable[Outputs]) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    """(decisions by order id, controls, profiles), each sorted."""
    decisions, controls, profiles = [], [], []
    for out in outputs:
        decisions += out.decisions.rows()
        controls += out.account_controls + out.ticker_controls
        profiles += out.profiles
    key = lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS)  # noqa: E731
    return (sorted(decisions, key=lambda d: d["order_id"]), sorted(controls, key=key),
            sorted(profiles, key=key))
