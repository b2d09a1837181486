"""``python -m benchmarks.mutation``: mutation score of the decision core, with cosmic-ray.

Which of the decision core's behaviour would the tests notice if it changed?
cosmic-ray (PyPI ``cosmic-ray``) makes one small change at a time (a ``<``
becomes ``<=``, a ``+`` a ``-``, a constant another, a condition its negation)
and runs the group's tests against it: a mutant the tests fail on is *killed*,
one they pass on *survived*, and each survivor is behaviour no test pins down.

Groups (what is mutated -> the tests run against each mutant, with the doctests
of the mutated modules):

    features  tradeguard/features/*.py  -> tests/features
    models    tradeguard/models/*.py    -> tests/models
    policy    tradeguard/policy/*.py    -> tests/policy
    core      tradeguard/core/*.py      -> tests/core, tests/policy, tests/scorecard (in process)
    signing   streams/signing.py        -> tests/contract/test_signing.py, test_control_keys.py
    console   tradeguard/console/ access.py, sessions.py, users.py (who may do what, sessions,
              CSRF, passwords)          -> tests/console/test_units.py, test_actions.py (broker)
    gateway   tradeguard/gateway/client.py (deadlines, fallbacks)
                                        -> tests/gateway/test_gateway_rules.py,
                                           test_gateway_client_units.py,
                                           test_gateway_without_engine.py (broker)
    bounds    streams/bounds.py, streams/partitioning.py
                                        -> tests/contract/test_bounds_and_partitioning.py

A group whose tests start the embedded broker pays its start-up per mutant (seconds).

The whole population of mutants takes hours on two cores (each mutant of a
Numba module recompiles its kernels), so by default a seeded random sample of
``--sample`` mutants per group runs: the same seed gives the same mutants, so
two runs (before and after new tests) are comparable. ``--sample 0`` runs all.
Nothing is mutated in this checkout: the tracked files are copied to a
temporary directory first. cosmic-ray lives in a virtual environment of its
own (``.venv-mutation``, created on first use; its click pin conflicts with
Faust's), and runs this interpreter's pytest against each mutant.

Results: ``benchmarks/results/mutation-<UTC timestamp>.json`` and ``.md``
(score per group; every survivor with its diff). Not part of the default test
run nor of ``python -m benchmarks``: about 15-25 minutes at the default sample.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COSMIC_RAY = "cosmic-ray==8.7.0"
DEFAULT_VENV = ROOT / ".venv-mutation"


@dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]  # the mutated files, as globs from the repository root
    tests: tuple[str, ...]
    # Numba caches a kernel by its own file's stamp only: account.py's cached kernels
    # keep the old code of primitives.py's after it is mutated. Such groups compile
    # every mutant afresh (an empty NUMBA_CACHE_DIR), at some seconds each.
    fresh_numba_cache: bool = False


    def files(self, root: Path) -> list[str]:
        """The mutated modules under ``root`` (package ``__init__`` files left out)."""
        return sorted({str(p.relative_to(root)) for pattern in self.modules
                       for p in root.glob(pattern) if p.name != "__init__.py"})


GROUPS = (
    Group("features", ("tradeguard/features/*.py",), ("tests/features",),
          fresh_numba_cache=True),
    Group("models", ("tradeguard/models/*.py",), ("tests/models",)),
    Group("policy", ("tradeguard/policy/*.py",), ("tests/policy",)),
    Group("core", ("tradeguard/core/*.py",), ("tests/core", "tests/policy",
                                              "tests/scorecard/test_key_figures.py")),
    Group("signing", ("streams/signing.py",), ("tests/contract/test_signing.py",
                                               "tests/contract/test_control_keys.py")),
    Group("console", ("tradeguard/console/access.py", "tradeguard/console/sessions.py",
                      "tradeguard/console/users.py"),
          ("tests/console/test_units.py", "tests/console/test_actions.py")),
    Group("gateway", ("tradeguard/gateway/client.py",),
          ("tests/gateway/test_gateway_rules.py", "tests/gateway/test_gateway_client_units.py",
           "tests/gateway/test_gateway_without_engine.py")),
    Group("bounds", ("streams/bounds.py", "streams/partitioning.py"),
          ("tests/contract/test_bounds_and_partitioning.py",)),
)


def cosmic_ray_bin(venv: Path) -> Path:
    """cosmic-ray's command, installing it into ``venv`` first when it is not there."""
    exe = venv / "bin" / "cosmic-ray"
    if not exe.exists():
        print(f"mutation: installing {COSMIC_RAY} into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", COSMIC_RAY], check=True)
    return exe


def copy_checkout(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of this checkout, copied to ``dest``."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, names):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def config(group: Group, work: Path, timeout_s: float) -> str:
    tests = [t for t in group.tests if (work / t).exists()]  # a run on an older tree
    modules = group.files(ROOT)
    # -x: a killed mutant stops at its first failing test; -p no:cacheprovider: no
    # .pytest_cache written between mutants.
    runner = ["-m", "benchmarks.mutation", "pytest"] if group.fresh_numba_cache else ["-m", "pytest"]
    # -p benchmarks.mutation: this module as a pytest plugin (pytest_configure below)
    command = " ".join([sys.executable, *runner, "-x", "-q", "-p", "no:cacheprovider",
                        "-p", "benchmarks.mutation", "--no-header", *tests, *modules])
    return "\n".join([
        "[cosmic-ray]",
        f"module-path = {json.dumps(modules)}",
        f"timeout = {timeout_s}",
        "excluded-modules = []",
        f"test-command = {json.dumps(command)}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
    ])


def sample(session: Path, n: int, seed: int) -> tuple[int, int]:
    """Keep a seeded sample of ``n`` of the session's mutants (0: all); (population, kept)."""
    db = sqlite3.connect(session)
    try:
        jobs = sorted(row[0] for row in db.execute("SELECT job_id FROM mutation_specs"))
        # job ids are random UUIDs; order them by what they mutate so a seed picks the same ones
        where = {row[0]: row[1:] for row in db.execute(
            "SELECT job_id, module_path, operator_name, occurrence FROM mutation_specs")}
        jobs.sort(key=lambda j: tuple(map(str, where[j])))
        keep = set(jobs if not n or n >= len(jobs) else random.Random(seed).sample(jobs, n))
        drop = [(j,) for j in jobs if j not in keep]
        db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
        db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
        db.commit()
        return len(jobs), len(keep)
    finally:
        db.close()


# Run by cosmic-ray's interpreter: the changed lines of each (module, operator, occurrence)
# read as JSON from stdin, printed as JSON.
_CHANGED_LINES = """
import difflib, json, sys
from pathlib import Path
import cosmic_ray.plugins
from cosmic_ray.mutating import mutate_code
out = []
for module, operator, occurrence in json.load(sys.stdin):
    code = Path(module).read_text()
    mutated = mutate_code(code, cosmic_ray.plugins.get_operator(operator)(), occurrence)
    diff = difflib.unified_diff(code.split("\\n"), (mutated or code).split("\\n"), lineterm="")
    out.append([d for d in diff if d[:1] in "+-" and d[:3] not in ("---", "+++")])
print(json.dumps(out))
"""


def changed_lines(diff: str | None) -> list[str]:
    """The removed and added lines of a mutant's diff: what it changed, wherever it sits."""
    return [d for d in (diff or "").splitlines()
            if d[:1] in "+-" and d[:3] not in ("---", "+++")]


def keep_only(session: Path, survivors: list[dict], cr: Path, work: Path) -> tuple[int, int]:
    """Keep the mutants of ``survivors``; (population, kept).

    A survivor is found by what it changes (the removed and added lines of its diff),
    not by its occurrence number: that counts the operator's earlier applications in
    the module, so a line added above it since the earlier report (another number, say)
    would make the same number pick a different mutant. Among equal changes the one
    nearest the survivor's line is taken.
    """
    db = sqlite3.connect(session)
    try:
        rows = db.execute("SELECT job_id, module_path, operator_name, occurrence, "
                          "start_pos_row FROM mutation_specs").fetchall()
        wanted_ops = {(r["module"], r["operator"]) for r in survivors}
        candidates = [row for row in rows if tuple(row[1:3]) in wanted_ops]
        found = subprocess.run([str(cr.parent / "python"), "-c", _CHANGED_LINES], cwd=work,
                               input=json.dumps([row[1:4] for row in candidates]), text=True,
                               capture_output=True, check=True)
        changes = json.loads(found.stdout)
        keep = set()
        for r in survivors:
            same = [(abs(row[4] - r["line"]), row[0]) for row, change in zip(candidates, changes)
                    if tuple(row[1:3]) == (r["module"], r["operator"])
                    and change == changed_lines(r["diff"])]
            if same:
                keep.add(min(same)[1])
        drop = [(job,) for job, *_ in rows if job not in keep]
        db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
        db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
        db.commit()
        return len(rows), len(keep)
    finally:
        db.close()


def annotation_spans(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where ``path``'s annotations are, when ``from __future__ import annotations`` means
    they are never evaluated: a mutant there (``str | None`` -> ``str ^ None``) is
    equivalent to the original, and no test can kill it."""
    tree = ast.parse(path.read_text())
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in tree.body)
    if not future:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            found += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                                             args.vararg, args.kwarg) if a and a.annotation]
            found += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in found]


def results(session: Path, work: Path) -> list[dict]:
    db = sqlite3.connect(session)
    try:
        rows = db.execute(
            "SELECT s.module_path, s.operator_name, s.occurrence, s.start_pos_row, "
            "s.start_pos_col, s.definition_name, r.worker_outcome, r.test_outcome, r.diff "
            "FROM mutation_specs s LEFT JOIN work_results r ON r.job_id = s.job_id").fetchall()
    finally:
        db.close()
    keys = ("module", "operator", "occurrence", "line", "col", "definition", "worker_outcome",
            "test_outcome", "diff")
    out = [dict(zip(keys, row)) for row in rows]
    spans = {m: annotation_spans(work / m) for m in {r["module"] for r in out}}
    for r in out:
        at = (r["line"], r["col"])
        r["in_annotation"] = any(start <= at < end for start, end in spans[r["module"]])
    return out


def summarise(rows: list[dict]) -> dict:
    """Killed, survived and incompetent mutants; score = killed / (killed + survived).

    A mutant whose tests ran past the timeout counts as killed (cosmic-ray's rule);
    an incompetent one (it broke the import, say) is counted apart, not scored.
    """
    outcome = [str(r["test_outcome"] or "").upper() for r in rows]
    killed = outcome.count("KILLED")
    survived = [r for r, o in zip(rows, outcome) if o == "SURVIVED"]
    judged = killed + len(survived)
    equivalent = sum(r["in_annotation"] for r in survived)
    return {"mutants": len(rows), "killed": killed, "survived": len(survived),
            "incompetent": outcome.count("INCOMPETENT"), "not_run": outcome.count(""),
            "score": round(killed / judged, 4) if judged else None,
            "survived_in_annotations": equivalent,
            "score_without_annotations": (round(killed / (judged - equivalent), 4)
                                          if judged > equivalent else None),
            "survivors": sorted(survived, key=lambda r: (r["module"], r["line"] or 0))}


def run_group(cr: Path, work: Path, group: Group, n: int, seed: int, timeout_s: float,
              previous: dict | None = None) -> dict:
    """One group's session; with ``previous`` (that group in an earlier report) only its
    survivors run again, and the mutants it killed count as killed (tests only grow)."""
    started = time.monotonic()
    cfg, session = work / f"{group.name}.toml", work / f"{group.name}.sqlite"
    cfg.write_text(config(group, work, timeout_s))
    subprocess.run([str(cr), "init", str(cfg), str(session)], cwd=work, check=True)
    if previous is None:
        population, kept = sample(session, n, seed)
    else:
        population, kept = keep_only(session, previous["survivors"], cr, work)
        if kept != previous["survived"]:
            print(f"mutation: {group.name}: {previous['survived'] - kept} earlier survivors no "
                  "longer exist (the code changed); they are left out", flush=True)
    print(f"mutation: {group.name}: {kept} of {population} mutants", flush=True)
    baseline = subprocess.run([str(cr), "baseline", str(cfg)], cwd=work, capture_output=True,
                              text=True)
    if baseline.returncode != 0:
        raise RuntimeError(f"{group.name}: the tests fail without any mutation:\n"
                           f"{baseline.stdout[-3000:]}{baseline.stderr[-3000:]}")
    subprocess.run([str(cr), "exec", str(cfg), str(session)], cwd=work, check=True)
    out = summarise(results(session, work))
    if previous is not None:  # earlier kills stand; the earlier survivors were re-judged
        rechecked = out["mutants"]
        out["killed"] += previous["killed"]
        out["incompetent"] += previous["incompetent"]
        out["mutants"] = previous["mutants"] - previous["survived"] + rechecked
        judged = out["killed"] + out["survived"]
        equivalent = out["survived_in_annotations"]
        out["score"] = round(out["killed"] / judged, 4) if judged else None
        out["score_without_annotations"] = (round(out["killed"] / (judged - equivalent), 4)
                                            if judged > equivalent else None)
        # The earlier run's score on the same footing (its annotation survivors survive here too).
        before = previous["killed"] + previous["survived"] - equivalent
        out["before_score_without_annotations"] = (round(previous["killed"] / before, 4)
                                                   if before else None)
        out["rechecked"] = rechecked
    out.update(population=population, seconds=round(time.monotonic() - started, 1))
    print(f"mutation: {group.name}: score {out['score']} ({out['killed']} killed, "
          f"{out['survived']} survived) in {out['seconds']:.0f} s", flush=True)
    return out


def markdown(report: dict) -> str:
    lines = [f"# Mutation score ({report['created']})", "",
             f"`{report['command']}`; cosmic-ray {report['cosmic_ray']}, seed {report['seed']}, "
             f"{report['sample'] or 'all'} mutants per group, commit {report['commit']}"
             + (f", tests/ of {report['tests_from']}" if report["tests_from"] else "")
             + (f"; the survivors of {report['recheck_of']} judged again, its kills kept"
                if report["recheck_of"] else "") + ".", "",
             "| group | mutants (population) | killed | survived (in annotations) | incompetent "
             "| score | score without annotation mutants | s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, g in report["groups"].items():
        lines.append(f"| {name} | {g['mutants']} ({g['population']}) | "
                     f"{g['killed']} | {g['survived']} ({g.get('survived_in_annotations', '?')}) | "
                     f"{g['incompetent']} | {g['score']} | "
                     f"{g.get('score_without_annotations', '?')} | {g['seconds']:.0f} |")
    for name, g in report["groups"].items():
        if g["survivors"]:
            lines += ["", f"## Survivors: {name}", ""]
            for r in g["survivors"]:
                note = " (annotation: never evaluated)" if r.get("in_annotation") else ""
                lines += [f"- `{r['module']}:{r['line']}` ({r['definition']}) {r['operator']}{note}",
                          "", "```diff", (r["diff"] or "").strip(), "```"]
    return "\n".join(lines) + "\n"


def pytest_configure(config) -> None:
    """As a pytest plugin (each mutant's test command): Hypothesis without its health checks.

    On two shared cores a generator can be slow for reasons that have nothing to do with the
    mutant (another engineer's build); a health check failing then would count the mutant as
    killed, or fail the baseline. The properties themselves run unchanged.
    """
    from hypothesis import HealthCheck, settings

    settings.register_profile("mutation", suppress_health_check=list(HealthCheck),
                              deadline=None)
    settings.load_profile("mutation")


def run_pytest_with_fresh_numba_cache(args: list[str]) -> int:
    """pytest ``args`` with Numba compiling into an empty cache, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        # Bounds checks on: Numba reads past an array's end silently, so a slice cut short
        # (a[i:i - n]) still reads the right memory and such a mutant would survive unseen.
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "NUMBA_BOUNDSCHECK": "1"}
        return subprocess.run([sys.executable, "-m", "pytest", *args], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["pytest"]:  # the test command of a group with fresh_numba_cache
        return run_pytest_with_fresh_numba_cache(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", default=",".join(g.name for g in GROUPS))
    parser.add_argument("--sample", type=int, default=30, help="mutants per group (0: all)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per mutant")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help="virtual environment holding cosmic-ray")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--recheck", type=Path, metavar="REPORT.json", nargs="+",
                        help="run only the survivors of earlier reports (same seed), counting "
                             "their kills: the score after tests were added. Several reports: "
                             "each group from the last one that has it")
    parser.add_argument("--tests-from", metavar="REV",
                        help="run the tests/ folder of git revision REV against today's code "
                             "(the score before new tests, on the same mutants)")
    args = parser.parse_args(argv)
    wanted = args.groups.split(",")
    unknown = set(wanted) - {g.name for g in GROUPS}
    if unknown:
        parser.error(f"unknown group(s) {sorted(unknown)}; groups: {[g.name for g in GROUPS]}")
    previous = None
    for path in args.recheck or ():  # a later report's group replaces an earlier one's
        previous = previous or {"groups": {}}
        previous["groups"].update(json.loads(path.read_text())["groups"])
    cr = cosmic_ray_bin(args.venv)
    version = subprocess.run([str(cr), "--version"], capture_output=True, text=True).stdout.split()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "tradeguard", "tests"],
                           cwd=ROOT, text=True, capture_output=True).stdout.strip()
    report = {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "command": "python -m benchmarks.mutation " + " ".join(argv),
              "cosmic_ray": version[-1] if version else "?", "seed": args.seed,
              "sample": args.sample, "commit": commit + ("+dirty" if dirty else ""),
              "tests_from": args.tests_from,
              "recheck_of": ", ".join(map(str, args.recheck)) if args.recheck else None,
              "groups": {}}
    with tempfile.TemporaryDirectory(prefix="tradeguard-mutation-") as tmp:
        work = Path(tmp)
        copy_checkout(work)
        if args.tests_from:
            shutil.rmtree(work / "tests")
            archive = subprocess.run(["git", "archive", args.tests_from, "tests"], cwd=ROOT,
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x"], cwd=work, input=archive, check=True)
        for group in GROUPS:
            if group.name in wanted:
                report["groups"][group.name] = run_group(
                    cr, work, group, args.sample, args.seed, args.timeout,
                    previous["groups"].get(group.name) if previous else None)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"mutation-{report['created'].replace('-', '').replace(':', '')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report).split("\n## ")[0])
    print(f"mutation: wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
