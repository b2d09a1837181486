"""Plain-Python twins of the feature kernels: slow, obvious, and the definition of "correct".

Each public function here does what one Numba kernel does, record by record,
on the same state arrays of a feature object, using Python ints and floats
and `math`. The property tests hold kernel == twin on random streams, so the
kernels may be clever while their meaning stays pinned down here.
"""

from __future__ import annotations

import math

import numpy as np

from .account import (ACCOUNT_FEATURES, FOREIGN_BIT, HABIT_SESSION_KEEP, LOGIN_ATTRIBUTES,
                      MISMATCH_KNOWN_IP, MISMATCH_UNSEEN_IP, NO_DEVICE_BIT, TICKER_KIND,
                      UNKNOWN_BIT, AccountFeatures)
from .batches import LOGIN_FAILURE, LOGIN_SUCCESS, SESSION_START, AuthBatch, FlowBatch, OrderBatch, TradeBatch
from .primitives import BLOOM_HASHES, NEVER_MS
from .ticker import FLOW_BUY, FLOW_SELL, RISKY_BUY, TICKER_FEATURES, TRADED, TickerFeatures

__all__ = ["learn_auth", "learn_trades", "process_accounts", "process_accounts_with_logins",
           "process_tickers", "transform_flow", "transform_orders"]

_U64 = 2**64 - 1
_GOLDEN = 0x9E3779B97F4A7C15


# ---- building blocks -------------------------------------------------------------------------

def _mix64(x: int) -> int:
    z = (x + _GOLDEN) & _U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def _decay(dt_ms: int, tau_ms: float) -> float:
    return math.exp(-max(dt_ms, 0) / tau_ms)


def _observed_window_ms(age_ms: int, tau_ms: float) -> float:
    return max(tau_ms * (1.0 - math.exp(-max(age_ms, 0) / tau_ms)), 1000.0)


def _bloom_test_and_add(words: np.ndarray, kind: int, value: int) -> bool:
    if value == 0:
        return True
    h = _mix64(value ^ (((kind + 1) * _GOLDEN) & _U64))
    n_bits = len(words) * 64
    bits = [((h & 0xFFFFFFFF) + j * ((h >> 32) | 1)) % n_bits for j in range(BLOOM_HASHES)]
    present = all(int(words[b // 64]) >> (b % 64) & 1 for b in bits)
    for b in bits:
        words[b // 64] = np.uint64(int(words[b // 64]) | (1 << (b % 64)))
    return present


def _bloom_test(words: np.ndarray, kind: int, value: int) -> bool:
    """Twin of primitives.bloom_test: all bits set, nothing written."""
    if value == 0:
        return True
    h = _mix64(value ^ (((kind + 1) * _GOLDEN) & _U64))
    n_bits = len(words) * 64
    return all(int(words[b // 64]) >> (b % 64) & 1
               for b in (((h & 0xFFFFFFFF) + j * ((h >> 32) | 1)) % n_bits
                         for j in range(BLOOM_HASHES)))


def _probe_window(table: np.ndarray, key: int, max_probe: int) -> list[int]:
    start = _mix64(key) % len(table)
    return [(start + j) % len(table) for j in range(max_probe)]


def _table_find(table, key, now_ms, ttl_ms, max_probe) -> int:
    for slot in _probe_window(table, key, max_probe):
        if int(table[slot]["key"]) == key and now_ms - int(table[slot]["stamp_ms"]) <= ttl_ms:
            return slot
    return -1


def _table_claim(table, key, now_ms, ttl_ms, max_probe) -> tuple[int, bool]:
    window = _probe_window(table, key, max_probe)
    live = {slot: now_ms - int(table[slot]["stamp_ms"]) <= ttl_ms for slot in window}
    for slot in window:
        if int(table[slot]["key"]) == key and live[slot]:
            return slot, False
    free = [slot for slot in window if int(table[slot]["key"]) == 0 or not live[slot]]
    victim = free[0] if free else min(window, key=lambda slot: int(table[slot]["stamp_ms"]))
    table[victim]["key"] = key
    return victim, True


def _ring_touch(accounts: np.ndarray, stamps: np.ndarray, account: int, now_ms: int) -> tuple[int, int]:
    for j in range(len(accounts)):
        if accounts[j] == account:
            previous = int(stamps[j])
            stamps[j] = max(previous, now_ms)
            return j, previous
    stalest = int(np.argmin(stamps))  # first of the stalest, as the kernel picks
    accounts[stalest], stamps[stalest] = account, now_ms
    return stalest, NEVER_MS


def _window_sums(epochs: np.ndarray, sums: np.ndarray, epoch: int) -> np.ndarray:
    in_window = (epochs > epoch - len(epochs)) & (epochs <= epoch)
    return sums[in_window].sum(axis=0)


def _bucket_add(epochs, sums, epoch, column, amount) -> None:
    i = epoch % len(epochs)
    if epochs[i] < epoch:
        epochs[i] = epoch
        sums[i, :] = 0.0
    if epochs[i] == epoch:
        sums[i, column] += amount


# ---- accounts --------------------------------------------------------------------------------

def learn_auth(features: AccountFeatures, batch: AuthBatch) -> np.ndarray:
    """Twin of AccountFeatures.learn_auth (and its login rows: flags, failed count)."""
    features._reserve(batch)
    p = features._kernel_params
    login_rows = np.zeros((len(batch), 2))
    login_rows[:, 0] = -1.0
    for i in range(len(batch)):
        account, t, kind = int(batch.account[i]), int(batch.ts_ms[i]), int(batch.kind[i])
        a = features._accounts[account]
        failed_before = a["failed_logins"] * _decay(t - int(a["failed_ms"]), p.tau_fail_ms)
        if kind == LOGIN_FAILURE:
            a["failed_logins"] = failed_before + 1.0
            a["failed_ms"] = max(int(a["failed_ms"]), t)
        elif kind in (LOGIN_SUCCESS, SESSION_START):
            has_history = int(a["last_login_ms"]) != NEVER_MS
            flags = 0
            for k, name in enumerate(LOGIN_ATTRIBUTES):
                value = int(getattr(batch, name)[i])
                if not _bloom_test_and_add(features._bloom[account], k, value) and has_history:
                    flags |= 1 << k
            if not has_history:
                flags |= 1 << UNKNOWN_BIT
            if int(batch.device[i]) == 0:
                flags |= 1 << NO_DEVICE_BIT
            if not has_history and int(batch.country[i]) not in (0, int(p.home_country)):
                flags |= 1 << FOREIGN_BIT
            for habit, pending in (("habit_liquidation", "pending_liquidation"),
                                   ("habit_sells", "pending_sells"),
                                   ("habit_thin_x", "pending_thin_x"), ("habit_buys", "pending_buys")):
                a[habit] = a[habit] * HABIT_SESSION_KEEP + a[pending]
                a[pending] = 0.0
            a["last_login_ms"], a["last_login_flags"], a["last_login_failed"] = t, flags, failed_before
            login_rows[i] = (flags, failed_before)
            session = int(batch.session[i])
            if session != 0:
                slot, _ = _table_claim(features._sessions, session, t, p.session_ttl_ms, p.session_probe)
                s = features._sessions[slot]
                s["stamp_ms"], s["account"], s["failed"], s["new_flags"] = t, account, failed_before, flags
                s["ip"], s["device"], s["user_agent"] = batch.ip[i], batch.device[i], batch.user_agent[i]
    return login_rows


def transform_orders(features: AccountFeatures, batch: OrderBatch) -> np.ndarray:
    """Twin of AccountFeatures.transform_orders."""
    features._reserve(batch)
    p = features._kernel_params
    out = np.empty((len(batch), len(ACCOUNT_FEATURES)))
    for i in range(len(batch)):
        account, t = int(batch.account[i]), int(batch.ts_ms[i])
        a = features._accounts[account]
        notional = float(batch.qty[i] * batch.price[i])
        notional = notional if math.isfinite(notional) else 0.0
        buy, margin, overseas = bool(batch.is_buy[i]), bool(batch.margin[i]), bool(batch.overseas[i])

        session = int(batch.session[i])
        slot = _table_find(features._sessions, session, t, p.session_ttl_ms, p.session_probe) if session else -1
        if slot >= 0 and int(features._sessions[slot]["account"]) == account:
            s = features._sessions[slot]
            login_ms, flags, failed = int(s["stamp_ms"]), int(s["new_flags"]), float(s["failed"])
            differs = {name: int(getattr(batch, name)[i]) != 0 and int(s[name]) != 0
                       and int(getattr(batch, name)[i]) != int(s[name])
                       for name in ("ip", "device", "user_agent")}
            mismatch = 0.0
            if differs["device"] or differs["user_agent"]:
                mismatch = 1.0
            elif differs["ip"]:
                known = _bloom_test(features._bloom[account], 1, int(batch.ip[i]))
                mismatch = MISMATCH_KNOWN_IP if known else MISMATCH_UNSEEN_IP
        else:
            login_ms, flags = int(a["last_login_ms"]), int(a["last_login_flags"])
            failed, mismatch = float(a["last_login_failed"]), 0.0
        secs = p.never_secs
        if login_ms != NEVER_MS:
            secs = min(max((t - login_ms) / 1000.0, 0.0), p.never_secs)

        has_orders = int(a["last_order_ms"]) != NEVER_MS
        if not has_orders:
            a["first_order_ms"] = t
        dt = t - int(a["last_order_ms"])
        age = t - int(a["first_order_ms"])
        orders_fast = a["orders_fast"] * _decay(dt, p.tau_fast_ms)
        orders_slow = a["orders_slow"] * _decay(dt, p.tau_slow_ms)
        rate_x = 1.0
        if orders_slow > 0:
            rate_x = ((orders_fast / _observed_window_ms(age, p.tau_fast_ms))
                      / (orders_slow / _observed_window_ms(age, p.tau_slow_ms)))
        a["orders_fast"], a["orders_slow"] = orders_fast + 1.0, orders_slow + 1.0
        d = _decay(dt, p.tau_habit_ms)
        weight, habit_notional, habit_margin = a["habit_weight"] * d, a["habit_notional"] * d, a["habit_margin"] * d
        notional_x = notional / (habit_notional / weight) if habit_notional > 0 else 1.0
        sudden_margin = margin and has_orders and habit_margin < p.margin_rare_share * weight
        a["habit_weight"], a["habit_notional"] = weight + 1.0, habit_notional + notional
        a["habit_margin"] = habit_margin + (1.0 if margin else 0.0)
        a["last_order_ms"] = max(int(a["last_order_ms"]), t)

        in_episode = t - int(a["sell_episode_ms"]) <= p.liquidation_ms
        if not buy:
            if not in_episode:
                if int(a["sell_episode_ms"]) != NEVER_MS and a["sell_episode_holdings"] > 0:
                    a["pending_liquidation"] += min(max(
                        a["sell_episode_sold"] / a["sell_episode_holdings"], 0.0), 1.0)
                    a["pending_sells"] += 1.0
                a["sell_episode_ms"], a["sell_episode_sold"], a["sell_episode_holdings"] = t, 0.0, math.nan
                in_episode = True
            holdings = float(batch.holdings_value[i])
            if math.isnan(a["sell_episode_holdings"]) and not math.isnan(holdings):
                a["sell_episode_holdings"] = holdings + a["sell_episode_sold"]
            a["sell_episode_sold"] += notional
        liquidation = 0.0
        if in_episode and a["sell_episode_holdings"] > 0:
            liquidation = min(max(a["sell_episode_sold"] / a["sell_episode_holdings"], 0.0), 1.0)

        ticker_seen = _bloom_test_and_add(features._bloom[account], TICKER_KIND, int(batch.ticker[i]) + 1)
        first_overseas = buy and overseas and has_orders and int(a["traded_overseas"]) == 0
        if overseas:
            a["traded_overseas"] = 1
        adv = float(batch.ticker_adv_value[i])
        thin_x = notional / adv if buy and adv > 0 else 0.0
        usual_liquidation = a["habit_liquidation"] / a["habit_sells"] if a["habit_sells"] > 0 else 0.0
        # How usual this buy's share of the ticker's day is: the account's mean share over
        # its earlier sessions' buys against this one's (a habit, and no share, is usual).
        usual_thin = 0.0
        if a["habit_buys"] > 0:
            usual_thin_x = a["habit_thin_x"] / a["habit_buys"]
            if thin_x > 0:
                usual_thin = min(usual_thin_x / thin_x, 1.0)
            elif usual_thin_x > 0:
                usual_thin = 1.0
        if buy:
            a["pending_thin_x"] += thin_x
            a["pending_buys"] += 1.0
        out[i] = [secs, *[(flags >> k) & 1 for k in range(len(LOGIN_ATTRIBUTES))], failed, mismatch,
                  rate_x, notional_x, liquidation, buy and has_orders and not ticker_seen,
                  thin_x, first_overseas, sudden_margin, usual_liquidation, usual_thin,
                  (flags >> UNKNOWN_BIT) & 1, (flags >> FOREIGN_BIT) & 1,
                  float(login_ms != NEVER_MS and not flags & 1 and not (flags >> UNKNOWN_BIT) & 1
                        and not (flags >> NO_DEVICE_BIT) & 1)]
    return out


# ---- tickers ---------------------------------------------------------------------------------

def _adv(row, tau_adv_ms: float) -> float:
    if row["trades"] == 0:
        return math.nan
    age = int(row["last_trade_ms"]) - int(row["first_trade_ms"])
    return row["traded_value"] * 86_400_000.0 / _observed_window_ms(age, tau_adv_ms)


def learn_trades(features: TickerFeatures, batch: TradeBatch) -> None:
    """Twin of TickerFeatures.learn_trades."""
    features._reserve(batch)
    p = features._kernel_params
    for i in range(len(batch)):
        k, t, price = int(batch.ticker[i]), int(batch.ts_ms[i]), float(batch.price[i])
        s = features._tickers[k]
        value = price * float(batch.qty[i])
        _bucket_add(features._epochs[k], features._sums[k], t // p.bucket_ms, TRADED, value)
        log_price = math.log(price)
        if s["trades"] == 0:
            s["first_trade_ms"], s["anchor_log_price"] = t, log_price
        dt = t - int(s["last_trade_ms"])
        s["traded_value"] = s["traded_value"] * _decay(dt, p.tau_adv_ms) + value
        move = log_price - s["anchor_log_price"]
        enough = s["trades"] >= p.min_trades and s["move_variance"] > 0
        s["move_sigma"] = move / math.sqrt(s["move_variance"]) if enough else 0.0
        if s["trades"] > 0:
            s["move_variance"] += p.volatility_alpha * (move * move - s["move_variance"])
            keep = _decay(dt, p.tau_anchor_ms)
            s["anchor_log_price"] = keep * s["anchor_log_price"] + (1.0 - keep) * log_price
        s["trades"] += 1
        s["last_price"] = price
        s["last_trade_ms"] = max(int(s["last_trade_ms"]), t)


def transform_flow(features: TickerFeatures, batch: FlowBatch) -> np.ndarray:
    """Twin of TickerFeatures.transform_flow."""
    features._reserve(batch)
    p = features._kernel_params
    out = np.empty((len(batch), len(TICKER_FEATURES)))
    for i in range(len(batch)):
        k, t = int(batch.ticker[i]), int(batch.ts_ms[i])
        epoch, since = t // p.bucket_ms, t - p.window_ms + 1
        notional, risk = float(batch.notional[i]), float(batch.account_risk[i])
        epochs, sums = features._epochs[k], features._sums[k]
        ring_account, ring_ms, ring_risk = features._ring_account[k], features._ring_ms[k], features._ring_risk[k]
        if batch.is_buy[i]:
            _bucket_add(epochs, sums, epoch, FLOW_BUY, notional)
            if risk >= p.risky_threshold:
                _bucket_add(epochs, sums, epoch, RISKY_BUY, notional)
            slot, previous_ms = _ring_touch(ring_account, ring_ms, int(batch.account[i]), t)
            ring_risk[slot] = max(ring_risk[slot], risk) if previous_ms >= since else risk
        else:
            _bucket_add(epochs, sums, epoch, FLOW_SELL, notional)

        window = _window_sums(epochs, sums, epoch)
        buys, sells = window[FLOW_BUY], window[FLOW_SELL]
        live = ring_ms >= since
        normal = _adv(features._tickers[k], p.tau_adv_ms) * p.window_share_of_day
        out[i] = [(window[TRADED] + buys) / normal if normal > 0 else 0.0,
                  features._tickers[k]["move_sigma"],
                  live.sum(),
                  (live & (ring_risk >= p.risky_threshold)).sum(),
                  window[RISKY_BUY] / buys if buys > 0 else 0.0,
                  (buys - sells) / (buys + sells) if buys + sells > 0 else 0.0]
    return out


def _run_by_run(features, learn, transform, learned, transformed, runs, width) -> np.ndarray:
    """``learn`` the first batch's runs and ``transform`` the second's, in the runs' order."""
    out, i, j = [], 0, 0
    for is_second, n in np.asarray(runs, dtype=np.int64).reshape(-1, 2).tolist():
        if is_second:
            out.append(transform(features, transformed.rows(j, j + n)))
            j += n
        else:
            learn(features, learned.rows(i, i + n))
            i += n
    return np.concatenate(out) if out else np.empty((0, width))


def process_accounts(features: AccountFeatures, auth: AuthBatch, orders: OrderBatch,
                     runs) -> np.ndarray:
    """Twin of AccountFeatures.process: the two twins above, run by run."""
    return process_accounts_with_logins(features, auth, orders, runs)[0]


def process_accounts_with_logins(features: AccountFeatures, auth: AuthBatch, orders: OrderBatch,
                                 runs) -> tuple[np.ndarray, np.ndarray]:
    """Twin of AccountFeatures.process_with_logins: the orders' features and the login rows."""
    logins = []

    def learn(f, batch):
        logins.append(learn_auth(f, batch))

    out = _run_by_run(features, learn, transform_orders, auth, orders, runs,
                      len(ACCOUNT_FEATURES))
    return out, np.concatenate(logins) if logins else np.empty((0, 2))


def process_tickers(features: TickerFeatures, trades: TradeBatch, flows: FlowBatch,
                    runs) -> np.ndarray:
    """Twin of TickerFeatures.process: the two twins above, run by run."""
    return _run_by_run(features, learn_trades, transform_flow, trades, flows, runs,
                       len(TICKER_FEATURES))
