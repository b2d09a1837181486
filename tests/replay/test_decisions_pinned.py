"""Speed work on the decision core changes no decision: the short scenario, fed as
``tradeguard replay`` feeds it (``LiveBatches``, 8 partitions), decides exactly what it
decided when this digest was taken (commit 253eecf, before the account side's walk of
candidates and the ticker profiles read in one call; the same on 790b5e3 and 99ea962), then
retaken after the strangers' rules (the login step-up waits for the login's own second factor,
failed logins weighed by device and count, a never-seen account's first login from abroad):
the same digest on the ``strangers`` branch alone and merged with the speed work.

The digest covers every decision (action, score, reasons, versions), every control and
every ticker profile, in canonical order (``tests/core/outcomes.py``). A change meant to
change decisions changes it: take the new digest from the failure message, and say in
the commit why the decisions changed. A change meant only to be faster must leave it.
"""

from __future__ import annotations

import hashlib

import orjson

from tests.core.outcomes import canonical
from tradeguard.core import InProcessEngine, typed
from tradeguard.replay.batches import LiveBatches

PARTITIONS = 8
#: (decisions, controls, profiles, sha256 of the canonical outputs)
PINNED = (379, 11, 411, "65a33c02f9ad4ca88f74278e8ab9471de5a19d7f7b72107984cc339c5ceffc9c")


def test_the_short_scenario_decides_as_pinned(short_session):
    records = [(name, typed(name, r)) for name, r in short_session.records]
    engine = InProcessEngine(partitions=PARTITIONS)
    outputs = []
    for batch in LiveBatches(PARTITIONS)(records):
        batch.ahead(engine.shared.profiles)
        outputs.append(engine.process(batch.records))
    decisions, controls, profiles = canonical(outputs)
    digest = hashlib.sha256(orjson.dumps([decisions, controls, profiles],
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert (len(decisions), len(controls), len(profiles), digest) == PINNED
