"""Exact replay: each live step fed again to the core, from its provenance (``engine.steps``).

A live worker decides now with what it has read, and records what that was: per step,
the [first, end) offsets of every input partition it fed the core, and how far it had
read each replicated partition (controls.*, tickers.profile, reference.tickers and the
auth.events of every partition, for the login index). This module re-executes those
steps, worker incarnation by incarnation, as ``agents/engine.py`` ``_step`` ran them:

- the incarnation's shared state (board, profiles, login index) is brought to the
  recorded offsets of each replicated partition before the step, exactly as far as
  the worker had applied them (control records with a bad signature refused, as live);
- each partition's records of the step, less what the live path dead-lettered, go to
  its core: every released login indexed first, then every ticker side (the profiles it
  applied at once, as stamped), then every account side;
- the controls a partition's core issued in a step that is not run here (a restore runs
  one partition, from its snapshot on) go on the board as the step's record names them,
  if signed with the control key (the record is not on a control topic): the live board
  had them at once, its reader only later;
- each decision is compared with the one published under the same ``step`` reference:
  action, score, reasons, model and policy version, all equal or it is a difference.

A partition's core moves to the next incarnation that owns it with the state it had
(``PartitionCore`` bytes). A restored worker's core is built from a snapshot and a
restore replay instead: that is exact only as far as restore replays what the steps fed
(docs/replay.md says where it is not).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.signing import (CONTROL_TOPICS, SIGNATURE, ControlKeys, is_signed,
                             unsigned_or_forged)
from streams.topics import (AUTH_EVENTS, CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DEADLETTER,
                            DECISIONS, ENGINE_STEPS, REFERENCE_TICKERS, TICKERS_PROFILE)
from streams.wire import to_dict
from tradeguard.core import INPUT_TOPICS, Inputs, PartitionCore, Shared
from tradeguard.core.blocks import ACTIONS as ACTION_CODES
from tradeguard.policy.config import PolicyConfig
from tradeguard.runtime.settings import Settings

__all__ = ["REPLICATED", "StepReplay", "compare", "decode_steps", "read", "replay_steps",
           "superseded"]

#: What every worker reads whole (auth.events: every partition), in agents/controls.py.
REPLICATED = (CONTROLS_TICKERS, CONTROLS_ACCOUNTS, TICKERS_PROFILE, AUTH_EVENTS,
              REFERENCE_TICKERS)
#: Fields that make two decisions the same decision.
SAME = ("action", "score", "reasons", "model_version", "policy_version")


def decode_steps(values: list[bytes]) -> list[dict[str, Any]]:
    """``engine.steps`` values, grouped by incarnation in step order, incarnations by start."""
    by_worker: dict[str, list[dict]] = defaultdict(list)
    for v in values:
        step = orjson.loads(v)
        by_worker[step["worker"]].append(step)
    out = []
    for steps in sorted(by_worker.values(), key=lambda ss: min(s["ts"] for s in ss)):
        out += sorted(steps, key=lambda s: s["step"])
    return out


@dataclass
class _Worker:
    shared: Shared
    applied: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset applied


def superseded(steps: list[dict[str, Any]]) -> set[tuple[str, int, int]]:
    """(worker, step, partition) whose work a later incarnation's restore redid.

    A worker restoring partition p resumes at the committed offsets (``restored.to``), or
    at its snapshot's (``restored.from``) where that is later: what an earlier incarnation
    decided of p past them (it crashed before committing) was decided again by the restorer. Those earlier steps' decisions were published and
    are reproduced, but the state they left is not the one the restorer started from.
    """
    out: set[tuple[str, int, int]] = set()
    order = {w: i for i, w in enumerate(dict.fromkeys(s["worker"] for s in steps))}
    # The restorer resumed from the later of its snapshot and the committed offsets: a
    # snapshot is written once its step is delivered, which can be before that step's
    # commit lands, and records below the snapshot are skipped, not decided again.
    restores = [(order[s["worker"]], int(p), {
                    n: max(r.get("to", {}).get(n, 0), r.get("from", {}).get(n, 0))
                    for n in {*r.get("to", {}), *r.get("from", {})}})
                for s in steps for p, r in (s.get("restored") or {}).items()]
    if not restores:
        return out
    for s in steps:
        mine = order[s["worker"]]
        for key, spans in s["released"].items():
            p = int(key)
            for later, q, to in restores:
                if q == p and later > mine and any(
                        name in to and span[1] > to[name] for name, span in spans.items()):
                    out.add((s["worker"], s["step"], p))
                    break
    return out


class StepReplay:
    """Recorded steps through the cores; decisions keyed by (order_id, step reference).

    ``inputs``: (registry topic, partition) -> {offset: typed record} for the input topics;
    ``replicated``: (registry topic, partition) -> [(offset, typed record, raw value)] in
    offset order; ``dead``: (registry topic, partition, offset) the live path dead-lettered.

    ``only`` (a restore): run only these partitions' cores, from ``cores`` as given, and
    only the parts of steps within ``bounds`` (partition -> topic -> [from, to) offsets);
    the other partitions' released logins and every stamped profile still shape the
    shared state, as they did live.
    """

    def __init__(self, settings: Settings, policy: PolicyConfig,
                 inputs: dict[tuple[str, int], dict[int, Any]],
                 replicated: dict[tuple[str, int], list[tuple[int, Any, bytes]]],
                 dead: set[tuple[str, int, int]], only: set[int] | None = None,
                 cores: dict[int, PartitionCore] | None = None,
                 bounds: dict[int, dict[str, tuple[int, int]]] | None = None) -> None:
        self.settings, self.policy = settings, policy
        self.inputs, self.replicated, self.dead = inputs, replicated, dead
        self.keys = ControlKeys.from_settings(settings)
        self.only, self.bounds = only, bounds or {}
        self.cores: dict[int, PartitionCore] = dict(cores or {})
        self.owner: dict[int, str] = {}  # partition -> incarnation whose core it is
        self.workers: dict[str, _Worker] = {}
        self.decided: dict[tuple[str, str], dict[str, Any]] = {}
        self.handovers = 0  # partitions whose core moved to another incarnation
        self.restored = 0  # partitions reloaded at a restore from the state at its offsets
        self.profile_mismatches = 0  # profiles computed again unlike the stamped ones
        self.checked_controls = 0  # controls steps recorded, each signature checked
        self.refused_controls = 0  # of those, without a valid signature (forged)
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps = 0
        self._offsets: dict[tuple[str, int], list[int]] = {}
        self._superseded: set[tuple[str, int, int]] = set()
        self._checkpoints: dict[int, bytes] = {}  # p -> core before superseded work

    # -- one step -----------------------------------------------------------------------

    def run(self, steps: list[dict[str, Any]]) -> None:
        self._superseded = superseded(steps)
        for step in steps:
            self.step(step)

    def step(self, step: dict[str, Any]) -> None:
        started = time.perf_counter()
        name = step["worker"]
        worker = self.workers.get(name)
        if worker is None:
            worker = self.workers[name] = _Worker(Shared())
        for topic, parts in (step.get("seen_from") or {}).items():
            for key, first in parts.items():  # where its replicated reader began
                worker.applied.setdefault((topic, int(key)), first)
        self._catch_up(worker, step)
        caught = time.perf_counter()
        shared, cfg = worker.shared, self.policy
        for key in (step.get("restored") or {}):
            p = int(key)
            if p in self._checkpoints:  # the restorer began from the state at its offsets
                self.cores[p] = PartitionCore.from_bytes(self._checkpoints.pop(p), shared)
                self.owner[p] = name
                self.restored += 1
        ready: dict[int, Inputs] = {}
        logins = []
        for key, spans in step["released"].items():
            p = int(key)
            inputs = self._inputs(p, spans)
            logins.append(inputs.auth)
            if not self._runs(step, p, spans):
                continue
            ready[p] = inputs
            self._core(p, name, shared)
            if (name, step["step"], p) in self._superseded and p not in self._checkpoints:
                self._checkpoints[p] = self.cores[p].to_bytes()
        for auth in logins:  # as live: every released login indexed before any side runs
            shared.infra.observe(auth)
        outs = {}
        for p, inputs in ready.items():
            outs[p] = self.cores[p].process_tickers(inputs, cfg)
        # The controls of the partitions not run here went on the live board as they were
        # issued (ticker sides first, then account sides): a restore's board needs them,
        # its reader saw them only later (``seen``). A partition run here issues its own.
        # Every recorded control's signature is checked (a forged one counted, whichever
        # partition names it); only those of partitions not run here are applied.
        issued = {int(key): self._signed(part) for key, part in
                  (step.get("controls") or {}).items()}
        issued = {p: part for p, part in issued.items() if p not in ready}
        for part in issued.values():
            for record in part["tickers"]:
                shared.board.apply_ticker(record)
        stamped = step.get("profiles")
        if stamped is None:  # steps stamped before profiles were: the ones computed again
            for out in outs.values():
                shared.apply_profiles(out.profiles)
        else:
            for ticker, ts, adv, price in stamped:
                shared.profiles.apply(ticker, ts, adv, price)
            computed = [(d["ticker"], d["ts"], d["adv_value"], d["last_price"])
                        for out in outs.values() for d in out.profiles]
            if self.only is None and computed != [tuple(x) for x in stamped]:
                self.profile_mismatches += 1
        ref = f"{name}/{step['step']}"
        for p, inputs in ready.items():
            out = self.cores[p].process_accounts(inputs, cfg, outs[p])
            self._collect(out.decisions, ref)
        for part in issued.values():  # an account's controls bear on its partition alone
            for record in part["accounts"]:
                shared.board.apply_account(record)
        self.steps += 1
        self.seconds["shared"] += caught - started
        self.seconds["core"] += time.perf_counter() - caught

    def _signed(self, part: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """A step's recorded controls that carry the control key's signature, unsigned again.

        ``engine.steps`` is not a control topic: anyone who can write to it could name a
        freeze or a halt there. Only what the engine signed goes on the board (as the live
        board held it, without the signature); the rest is counted in ``refused_controls``.
        """
        out: dict[str, list[dict[str, Any]]] = {"tickers": [], "accounts": []}
        for kind in out:
            records = part.get(kind, ()) if isinstance(part, dict) else ()
            for record in records:
                self.checked_controls += 1
                if isinstance(record, dict) and is_signed(record, self.keys):
                    out[kind].append({k: v for k, v in record.items() if k != SIGNATURE})
                else:
                    self.refused_controls += 1
        return out

    def _runs(self, step: dict[str, Any], p: int, spans: dict[str, list[int]]) -> bool:
        """Whether partition p's part of ``step`` goes through its core here."""
        if self.only is None:
            return True
        if p not in self.only or (step["worker"], step["step"], p) in self._superseded:
            return False
        bounds = self.bounds.get(p, {})
        return all(name not in bounds or bounds[name][0] <= span[0] and span[1] <= bounds[name][1]
                   for name, span in spans.items())

    def _core(self, p: int, worker: str, shared: Shared) -> None:
        core = self.cores.get(p)
        if core is None:
            self.cores[p] = PartitionCore(shared, self.settings.home_market,
                                          self.settings.anomaly_window,
                                          idle_horizon_s=self.settings.idle_horizon_s)
        elif self.owner.get(p, worker) != worker or core.shared is not shared:
            # The partition moved (or a restore's core): its state, this worker's shared.
            self.cores[p] = PartitionCore.from_bytes(core.to_bytes(), shared)
            self.handovers += self.owner.get(p, worker) != worker
        self.owner[p] = worker

    def _inputs(self, p: int, spans: dict[str, list[int]]) -> Inputs:
        inputs, dead = Inputs(), self.dead
        for name in INPUT_TOPICS:  # the order the live release adds them in does not matter
            span = spans.get(name)
            if not span:
                continue
            held = self.inputs.get((name, p), {})
            records = [held[o] for o in range(span[0], span[1])
                       if o in held and (name, p, o) not in dead]
            if records:
                inputs.add(name, records)
        return inputs

    def _catch_up(self, worker: _Worker, step: dict[str, Any]) -> None:
        """Apply replicated records up to the step's ``seen`` offsets, as the replica did."""
        shared = worker.shared
        for name, parts in step["seen"].items():
            for key, end in parts.items():
                q = int(key)
                start = worker.applied.get((name, q), 0)
                if end <= start:
                    continue
                held = self.replicated.get((name, q), [])
                offsets = self._offsets.get((name, q))
                if offsets is None:
                    offsets = self._offsets[(name, q)] = [r[0] for r in held]
                rows = held[bisect_left(offsets, start):bisect_left(offsets, end)]
                worker.applied[(name, q)] = end
                if name in CONTROL_TOPICS:
                    refused = {i for i, _ in unsigned_or_forged([r[2] for r in rows], self.keys)}
                    rows = [r for i, r in enumerate(rows) if i not in refused]
                records = [r[1] for r in rows]
                if name == AUTH_EVENTS:
                    shared.infra.observe(records)
                elif name == CONTROLS_TICKERS:
                    for r in records:
                        shared.board.apply_ticker(to_dict(r))
                elif name == CONTROLS_ACCOUNTS:
                    for r in records:
                        shared.board.apply_account(to_dict(r))
                elif name == TICKERS_PROFILE:
                    shared.apply_profiles(records)
                else:
                    shared.apply(name, records)

    def _collect(self, block: Any, ref: str) -> None:
        if not len(block):
            return
        policy = block.policy_version
        for oid, action, score, reasons, model in zip(
                block.order_id, block.action.tolist(), block.score.tolist(), block.reasons,
                block.model_version):
            self.decided[(oid, ref)] = {"action": ACTION_CODES[action], "score": score,
                                        "reasons": orjson.loads(reasons),
                                        "model_version": model, "policy_version": policy}


def compare(live: list[dict[str, Any]], replayed: dict[tuple[str, str], dict[str, Any]],
            start_ms: int | None = None, end_ms: int | None = None,
            steps: set[str] | None = None) -> dict[str, Any]:
    """Every live decision with a ``step`` against the replayed one under the same reference.

    ``steps``: the step references recorded. A decision naming another was published by a
    worker killed before its step record was delivered (never committed: its successor
    decided the order again): counted in ``step_lost``, not compared.
    """
    compared = identical = unstamped = lost = 0
    differences = []
    for d in live:
        if (start_ms is not None and d["order_ts"] < start_ms) or \
                (end_ms is not None and d["order_ts"] >= end_ms):
            continue
        if not d.get("step"):
            unstamped += 1
            continue
        if steps is not None and d["step"] not in steps:
            lost += 1
            continue
        compared += 1
        mine = replayed.get((d["order_id"], d["step"]))
        if mine is not None and all(mine[k] == d[k] for k in SAME):
            identical += 1
        elif len(differences) < 1000:
            differences.append({"order_id": d["order_id"], "step": d["step"],
                                "live": {k: d[k] for k in SAME}, "replay": mine})
    return {"compared": compared, "identical": identical, "unstamped": unstamped,
            "step_lost": lost,
            "differences": differences, "exact": compared == identical}


def read(settings: Settings) -> dict[str, Any]:
    """Everything an exact replay needs, read whole from the topics (``recorded.SourceReader``).

    The input topics (typed records by offset), the replicated ones (with their raw values,
    for the signatures), the dead letters, the published decisions and the steps.
    """
    from tradeguard.replay.recorded import RecordedTopics, SourceReader
    topics = RecordedTopics(settings)
    try:
        names = (*INPUT_TOPICS, *REPLICATED[:3], REFERENCE_TICKERS, DEADLETTER,
                 DECISIONS)
        starts = {(n, p): o for n in dict.fromkeys(names)
                  for p, o in topics.starts(n, None).items()}
        first = {(ENGINE_STEPS, p): o for p, o in topics.starts(ENGINE_STEPS, None).items()}
    finally:
        topics.close()
    # The steps first: without any (workers of an older release) nothing else is read.
    steps = [v for c in SourceReader(settings, first, keep_values=True,
                                     to_end=frozenset({ENGINE_STEPS})).read_all().values()
             for v in c.values]
    if not steps:
        return {"inputs": {}, "replicated": {}, "dead": set(), "decisions": [], "steps": [],
                "records": 0, "step_bytes": 0}
    reader = SourceReader(settings, starts, keep_values=True,
                          to_end=frozenset(n for n, _ in starts))
    chunks = reader.read_all()
    full = {settings.topic(n): n for n in INPUT_TOPICS}
    inputs: dict[tuple[str, int], dict[int, Any]] = {}
    replicated: dict[tuple[str, int], list[tuple[int, Any, bytes]]] = {}
    dead: set[tuple[str, int, int]] = set()
    decisions = []
    for (name, p), c in chunks.items():
        if name in INPUT_TOPICS:
            inputs[(name, p)] = dict(zip(c.offsets, c.records))
        if name in REPLICATED:
            replicated[(name, p)] = list(zip(c.offsets, c.records, c.values))
        if name == DEADLETTER:
            dead |= {(full[r.source_topic], r.partition, r.offset) for r in c.records
                     if r.source_topic in full}
        elif name == DECISIONS:
            decisions += [to_dict(r) for r in c.records]
    return {"inputs": inputs, "replicated": replicated, "dead": dead, "decisions": decisions,
            "steps": decode_steps(steps), "records": reader.read,
            "step_bytes": sum(len(v) for v in steps)}


def replay_steps(settings: Settings, policy: PolicyConfig, recorded: dict[str, Any],
                 start_ms: int | None = None, end_ms: int | None = None) -> dict[str, Any]:
    """Re-execute every recorded step under ``policy``; compare with the published decisions."""
    started = time.perf_counter()
    run = StepReplay(settings, policy, recorded["inputs"], recorded["replicated"],
                     recorded["dead"])
    run.run(recorded["steps"])
    refs = {f"{s['worker']}/{s['step']}" for s in recorded["steps"]}
    result = compare(recorded["decisions"], run.decided, steps=refs)  # the history's too
    result["range"] = {k: v for k, v in compare(recorded["decisions"], run.decided, start_ms,
                                                 end_ms, refs).items() if k != "differences"}
    stamped = [d for d in recorded["decisions"] if d.get("step")]
    result["cost"] = {  # what provenance costs on the wire (docs/replay.md)
        "step_records": len(recorded["steps"]), "step_bytes": recorded["step_bytes"],
        "bytes_per_step": round(recorded["step_bytes"] / max(len(recorded["steps"]), 1), 1),
        "bytes_per_decision": round((recorded["step_bytes"] + sum(
            len(d["step"]) + 10 for d in stamped)) / max(len(stamped), 1), 1)}
    result.update(steps=run.steps, workers=len(run.workers), handovers=run.handovers,
                  restored=run.restored, profile_mismatches=run.profile_mismatches,
                  checked_controls=run.checked_controls, refused_controls=run.refused_controls,
                  replayed=len(run.decided), policy_version=policy.version,
                  seconds={k: round(v, 3) for k, v in run.seconds.items()},
                  seconds_total=round(time.perf_counter() - started, 3))
    return result
