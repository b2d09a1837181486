"""Shadow mode: a candidate policy decides the same orders from the same features and model
scores, raises no control, and leaves the live decisions and the learned state untouched."""

import itertools
import tomllib

from tradeguard.core import InProcessEngine, typed
from tradeguard.policy.config import DEFAULT_POLICY_FILE, PolicyConfig

STRICT = PolicyConfig.from_toml("[order]\nhold_at = 0.0\nblock_at = 0.9\n",
                                base=tomllib.loads(DEFAULT_POLICY_FILE.read_text()))


def test_a_shadow_policy_decides_every_order_without_touching_the_live_path(short_session):
    records = [(n, typed(n, r)) for n, r in short_session.records]
    live, with_shadow = InProcessEngine(), InProcessEngine()
    live_rows, shadow_rows, live_again = [], [], []
    for out in live.run(records, itertools.repeat(300)):
        live_rows += out.decisions.rows()
    for out in with_shadow.run(records, itertools.repeat(300)):
        live_again += out.decisions.rows()
        for core in with_shadow.cores:
            block = core.shadow(STRICT)
            shadow_rows += block.rows()
            core.accounts._last = []  # each batch's orders are shadowed once
    assert live_again == live_rows  # the shadow changed nothing live, nor what was learned
    assert sorted(d["order_id"] for d in shadow_rows) == sorted(d["order_id"] for d in live_rows)
    assert {d["policy_version"] for d in shadow_rows} == {STRICT.version}
    assert STRICT.version != live.policy.version
    by_id = {d["order_id"]: d for d in live_rows}
    # Same scores (same features, same models), stricter actions.
    assert all(d["score"] == by_id[d["order_id"]]["score"] for d in shadow_rows)
    assert all(d["action"] != "allow" for d in shadow_rows)
    assert any(d["action"] == "allow" for d in live_rows)
