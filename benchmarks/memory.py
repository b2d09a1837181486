"""Feature and model state per tracked account, at 100k and 1M accounts.

Each size runs in a fresh process (``python -m benchmarks.memory N`` prints one
JSON line), so its RSS growth is its own. Every account logs in once and
places one order through ``AccountFeatures`` (learn_auth, transform_orders),
which is all the per-account state there is; the models are shared by all
accounts, so their size is reported whole, not per account.

- ``bytes_per_account``: ``AccountFeatures.bytes_per_account`` (state row +
  Bloom filter), what the target is about;
- ``array_bytes_per_account``: the per-account arrays' nbytes / N (includes the
  doubling's spare capacity);
- ``rss_bytes_per_account``: the process's RSS growth / N, so also the account
  id strings and their dict entry (``DenseIds``);
- ``snapshot_bytes_per_account``: ``AccountFeatures.to_bytes()`` / N.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import numpy as np

from benchmarks.rig import REPO, rss_bytes
from tradeguard.features.account import ACCOUNT_FEATURES, AccountFeatures
from tradeguard.features.batches import LOGIN_SUCCESS, AuthBatch, OrderBatch

__all__ = ["measure", "run_memory"]

CHUNK = 65_536


def _hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64)


def _grow(f: AccountFeatures, accounts: int, rng: np.random.Generator, now_ms: int) -> np.ndarray:
    x = np.empty((0, len(ACCOUNT_FEATURES)))
    for lo in range(0, accounts, CHUNK):
        ids = np.array([f.ids.get_or_add(f"acct-{i:07d}")
                        for i in range(lo, min(lo + CHUNK, accounts))])
        n = len(ids)
        session, ip, device, agent = (_hashes(rng, n) for _ in range(4))
        f.learn_auth(AuthBatch.from_columns(
            account=ids, kind=np.full(n, LOGIN_SUCCESS), ts_ms=np.full(n, now_ms - 60_000),
            session=session, ip=ip, device=device, asn=_hashes(rng, n), country=_hashes(rng, n),
            user_agent=agent))
        x = f.transform_orders(OrderBatch.from_columns(
            account=ids, ticker=rng.integers(0, 2**62, n), is_buy=rng.random(n) < 0.5,
            qty=np.full(n, 100), price=np.full(n, 2_500.0), margin=np.zeros(n, bool),
            overseas=np.zeros(n, bool), ts_ms=np.full(n, now_ms), session=session, ip=ip,
            device=device, user_agent=agent, holdings_value=np.full(n, 1e6),
            ticker_adv_value=np.full(n, 1e9)))
    return x


def measure(accounts: int) -> dict:
    """Grow the state to ``accounts`` accounts in this process and report its size."""
    rng = np.random.default_rng(5)
    now_ms = 1_767_000_000_000
    warm = AccountFeatures()
    _grow(warm, 10, rng, now_ms)  # compile before the baseline reading
    del warm
    gc.collect()
    before = rss_bytes(os.getpid())
    f = AccountFeatures()
    x = _grow(f, accounts, rng, now_ms)
    gc.collect()
    after = rss_bytes(os.getpid())
    out = {
        "accounts": accounts,
        "bytes_per_account": f.bytes_per_account,
        "array_bytes_per_account": round((f._accounts.nbytes + f._bloom.nbytes) / accounts, 1),
        "rss_bytes_per_account": round((after - before) / accounts, 1) if before and after else None,
        "snapshot_bytes_per_account": round(len(f.to_bytes()) / accounts, 1),
        "session_table_bytes": f.session_table_bytes,
    }
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


def run_memory(sizes=(100_000, 1_000_000), log=print) -> dict:
    out = {}
    for n in sizes:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(n)], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"memory benchmark at {n} accounts failed:\n{proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out[str(n)] = r
        log(f"  {n:>9,} accounts: {r['bytes_per_account']} B/account of feature state "
            f"({r['array_bytes_per_account']} allocated, {r['rss_bytes_per_account']} RSS growth "
            f"incl. ids; snapshot {r['snapshot_bytes_per_account']})")
    return out


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
