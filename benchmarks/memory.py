"""Feature state per tracked account, at 100k, 1M (and by hand 10M) accounts, with idle
accounts evicted to the cold tier and without.

Each size and mode runs in a fresh process (``python -m benchmarks.memory N [--no-evict]``
prints one JSON line), so its RSS growth is its own. Accounts arrive in event time over
``SPAN_HORIZONS`` idle horizons, each logging in once and placing one order through
``AccountFeatures`` (learn_auth, transform_orders), which is all the per-account state
there is; with eviction, the sweep ``AccountCore`` runs (``evict_idle``) follows event time
every 1/16 of the horizon, so about 1/``SPAN_HORIZONS`` of the accounts are hot at the end.
The models are shared by all accounts, so their size is reported whole, not per account.

- ``bytes_per_account``: ``AccountFeatures.bytes_per_account`` (state row + Bloom filter);
- ``hot_accounts``, ``hot_array_bytes`` and ``array_bytes_per_account`` (/ N): accounts in
  the hot arrays, and the arrays' nbytes (state rows, Bloom rows, last-event stamps, the
  doubling's spare capacity included);
- ``cold_accounts``, ``cold_bytes_per_account``: the cold tier's packed records (zlib);
- ``rss_bytes_per_account``: the process's RSS growth / N, so also the account id
  strings, the id map and, with eviction, the cold tier's dict and bytes objects;
- ``sweep_us_per_evicted``: time in ``evict_idle`` / accounts it evicted;
- ``readmit_us``: ``account_id`` of a cold account (unpack its record into the arrays);
- ``snapshot_bytes_per_account``: ``AccountFeatures.to_bytes()`` / N (up to 2M accounts).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.rig import REPO, rss_bytes
from tradeguard.core.accounts import IDLE_HORIZON_S, SWEEPS_PER_HORIZON
from tradeguard.features.account import AccountFeatures
from tradeguard.features.batches import LOGIN_SUCCESS, AuthBatch, OrderBatch

__all__ = ["measure", "run_memory"]

CHUNK = 65_536
#: Accounts arrive over this many idle horizons: the active set is about 1/10 of them.
SPAN_HORIZONS = 10
#: Above this many accounts the snapshot is not built (its size is linear; it takes minutes).
SNAPSHOT_UP_TO = 2_000_000
READMISSIONS = 10_000


def _hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64)


def _arrive(f: AccountFeatures, keys: range, rng: np.random.Generator, now_ms: int) -> np.ndarray:
    """Accounts ``keys`` log in and place one order each at ``now_ms``; their features."""
    ids = np.array([f.account_id(f"acct-{i:08d}") for i in keys])
    n = len(ids)
    session, ip, device, agent = (_hashes(rng, n) for _ in range(4))
    f.learn_auth(AuthBatch.from_columns(
        account=ids, kind=np.full(n, LOGIN_SUCCESS), ts_ms=np.full(n, now_ms - 60_000),
        session=session, ip=ip, device=device, asn=_hashes(rng, n), country=_hashes(rng, n),
        user_agent=agent))
    return f.transform_orders(OrderBatch.from_columns(
        account=ids, ticker=rng.integers(0, 2**62, n), is_buy=rng.random(n) < 0.5,
        qty=np.full(n, 100), price=np.full(n, 2_500.0), margin=np.zeros(n, bool),
        overseas=np.zeros(n, bool), ts_ms=np.full(n, now_ms), session=session, ip=ip,
        device=device, user_agent=agent, holdings_value=np.full(n, 1e6),
        ticker_adv_value=np.full(n, 1e9)))


def measure(accounts: int, evict: bool = True) -> dict:
    """Grow the state to ``accounts`` accounts in this process and report its size."""
    rng = np.random.default_rng(5)
    start_ms = 1_767_000_000_000
    horizon_ms = int(IDLE_HORIZON_S * 1000)
    period_ms = horizon_ms // SWEEPS_PER_HORIZON
    chunks = max(-(-accounts // CHUNK), 1)
    step_ms = SPAN_HORIZONS * horizon_ms // chunks
    warm = AccountFeatures()
    _arrive(warm, range(10), rng, start_ms)  # compile before the baseline reading
    warm.evict_idle(start_ms + 1)
    warm.account_id("acct-00000000")
    del warm
    gc.collect()
    before = rss_bytes(os.getpid())
    f = AccountFeatures()
    swept_s, evicted, swept_to = 0.0, 0, start_ms
    for k, lo in enumerate(range(0, accounts, CHUNK)):
        now_ms = start_ms + k * step_ms
        x = _arrive(f, range(lo, min(lo + CHUNK, accounts)), rng, now_ms)
        boundary = now_ms // period_ms * period_ms
        if evict and boundary > swept_to:
            swept_to = boundary
            t = time.perf_counter()
            evicted += len(f.evict_idle(boundary - horizon_ms))
            swept_s += time.perf_counter() - t
    gc.collect()
    after = rss_bytes(os.getpid())
    hot_bytes = f._accounts.nbytes + f._bloom.nbytes + f._seen.nbytes
    out = {
        "accounts": accounts,
        "evict": evict,
        "idle_horizon_days": IDLE_HORIZON_S / 86400 if evict else None,
        "bytes_per_account": f.bytes_per_account,
        "hot_accounts": f.hot_accounts,
        "hot_array_bytes": hot_bytes,
        "array_bytes_per_account": round(hot_bytes / accounts, 1),
        "cold_accounts": f.cold_accounts,
        "cold_bytes": f.cold_bytes,
        "cold_bytes_per_cold_account": round(f.cold_bytes / f.cold_accounts, 1)
        if f.cold_accounts else None,
        "rss_bytes_per_account": round((after - before) / accounts, 1) if before and after else None,
        "rss_growth_mb": round((after - before) / 2**20, 1) if before and after else None,
        "sweep_us_per_evicted": round(swept_s / evicted * 1e6, 2) if evicted else None,
        "session_table_bytes": f.session_table_bytes,
    }
    if f.cold_accounts:
        cold = list(f._cold)
        sample = [cold[i] for i in rng.choice(len(cold), min(READMISSIONS, len(cold)),
                                              replace=False)]
        t = time.perf_counter()
        for key in sample:
            f.account_id(key)
        out["readmit_us"] = round((time.perf_counter() - t) / len(sample) * 1e6, 2)
    if accounts <= SNAPSHOT_UP_TO:
        out["snapshot_bytes_per_account"] = round(len(f.to_bytes()) / accounts, 1)
    out.update(_model_bytes(x))
    return out


def _model_bytes(x: np.ndarray) -> dict:
    """Size of the shared models after learning, as the worker snapshots them."""
    from tradeguard.core.accounts import AccountCore

    s = AccountCore()
    models = {name: getattr(s, name) for name in ("anomaly", "classifier") if hasattr(s, name)}
    if "anomaly" in models:
        models["anomaly"].learn_many(x[:4_000])
    return {f"model_{name}_bytes": len(m.to_bytes()) for name, m in models.items()}


def run_memory(sizes=(100_000, 1_000_000), log=print, timeout_s: float = 900) -> dict:
    """Each size without eviction, then with it (under ``"evicting"``), each in a fresh
    process."""
    out = {}
    for n in sizes:
        for evict in (False, True):
            proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(n),
                                   *([] if evict else ["--no-evict"])], cwd=REPO,
                                  capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode != 0:
                raise RuntimeError(f"memory benchmark at {n} accounts failed:\n"
                                   f"{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if evict:
                out[str(n)]["evicting"] = r
            else:
                out[str(n)] = r
            log(f"  {n:>10,} accounts, {'evicting' if evict else 'no eviction'}: "
                f"{r['hot_accounts']:,} hot ({r['array_bytes_per_account']} B/account of "
                f"arrays), {r['cold_accounts']:,} cold ({r['cold_bytes_per_cold_account']} B "
                f"each packed); RSS growth {r['rss_bytes_per_account']} B/account incl. ids; "
                f"sweep {r['sweep_us_per_evicted']} us/evicted, readmit {r.get('readmit_us')} us")
    return out


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), evict="--no-evict" not in sys.argv[2:])))
