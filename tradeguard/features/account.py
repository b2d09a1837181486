"""Per-account takeover signals: who logged in, from where, and what the session then trades.

State is a fixed-size record per account plus a 1024-bit Bloom filter of what
the account has used before (devices, IPs, ASNs, countries, user agents,
tickers), and one shared, bounded table of open login sessions.

An account idle long enough can leave the hot arrays (``evict_idle``): its row and
filter are packed into a cold tier (zlib, kept in the snapshot) and its dense id is
reused; ``account_id`` readmits it bit for bit the next time it shows up.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import namedtuple
from dataclasses import dataclass
from typing import Collection

import numba
import numpy as np

from . import _snapshot
from .batches import LOGIN_FAILURE, LOGIN_SUCCESS, SESSION_START, AuthBatch, OrderBatch, require
from .ids import DenseIds, grown, stable_hash64
from .primitives import (NEVER_MS, bloom_test, bloom_test_and_add, decay, observed_window_ms, table_claim,
                         table_find)

__all__ = ["ACCOUNT_FEATURES", "AccountParams", "AccountFeatures"]

ACCOUNT_FEATURES: tuple[str, ...] = (
    "secs_since_login", "new_device", "new_ip", "new_asn", "new_country", "new_user_agent",
    "failed_logins_before", "session_mismatch", "order_rate_x_usual", "notional_x_usual",
    "liquidation_ratio", "first_buy_of_ticker", "thin_ticker_notional_x_adv",
    "first_overseas_trade", "sudden_margin",
    # The account's own baselines (0..1), from its earlier sessions only, so an attacker's
    # burst never becomes "usual" within the session it happens in. usual_thin_buy is how
    # usual *this* buy's thin-ticker share is (_usual_share): a habit of small thin buys
    # does not make a buy forty times larger usual.
    "usual_liquidation", "usual_thin_buy",
    # What is known of a login with no history to compare against (cold start).
    "unknown_account", "foreign_first_login",
    # 1: the login behind the order came from a device the account had used before (a known
    # account, a device id present). What travels with a customer abroad is their own phone;
    # a phishing or infostealer login brings the attacker's machine. The policy discounts
    # network novelty (new network, new country) by it: a traveller is not a stranger.
    "usual_device",
)

# Bloom "kinds" salt the hash so a device and an IP with equal hashes stay apart.
# 0..4 follow the new_* features (bit k of a login's new-flags is feature 1+k).
LOGIN_ATTRIBUTES = ("device", "ip", "asn", "country", "user_agent")
TICKER_KIND = len(LOGIN_ATTRIBUTES)
# Login flags beyond the new_* bits: the account's first login ever, and that from abroad.
UNKNOWN_BIT, FOREIGN_BIT = 5, 6
# The login carried no device id: its device cannot be usual (a missing attribute never
# reads as new, so without this bit a stripped device cookie would read as a known device).
NO_DEVICE_BIT = 7
# session_mismatch when only the IP differs from the login's: an IP the account has used
# before (a phone moving between its home Wi-Fi and its carrier), or one it never has (a
# proxy replaying the stolen cookie: an AiTM replay carries the victim's device and agent).
MISMATCH_KNOWN_IP, MISMATCH_UNSEEN_IP = 0.5, 0.75
# Flags that make a login's device not the account's usual one: new, first login, absent.
_NOT_USUAL_DEVICE = (1 << 0) | (1 << UNKNOWN_BIT) | (1 << NO_DEVICE_BIT)
# Weight of the sessions before the latest in a baseline: ~10 sessions of memory.
HABIT_SESSION_KEEP = 0.9


@dataclass(frozen=True)
class AccountParams:
    """Windows, half-lives and table sizes of AccountFeatures (times in seconds).

    failed_logins_before is a *decayed* count: each failure counts
    0.5 ** (age / failed_login_half_life_s), so with the default 15 min a
    failure just before a login counts 1, one 30 min before counts 1/4.
    """
    failed_login_half_life_s: float = 900.0
    order_rate_fast_half_life_s: float = 300.0      # "right now": the last few minutes
    order_rate_slow_half_life_s: float = 7 * 86400.0  # "usual": the last weeks
    habit_half_life_s: float = 30 * 86400.0         # mean notional and margin share
    liquidation_window_s: float = 900.0             # a sell episode lasts 15 min from its first sell
    margin_rare_share: float = 0.02                 # margin share below this counts as "never uses margin"
    session_ttl_s: float = 86400.0                  # brokers expire sessions within a day
    session_slots: int = 2**16                      # open sessions remembered (power of two)
    session_probe: int = 8                          # slots searched per session key
    bloom_bits: int = 1024                          # per account; multiple of 64
    never_logged_in_secs: float = 1e6               # secs_since_login when there is no login; also its cap
    home_country: str = "JP"                        # foreign_first_login: a first login from any other

    def __post_init__(self) -> None:
        if self.session_slots <= 0 or self.session_slots & (self.session_slots - 1):
            raise ValueError(f"AccountParams.session_slots: {self.session_slots} is not a power of two")
        if self.bloom_bits <= 0 or self.bloom_bits % 64:
            raise ValueError(f"AccountParams.bloom_bits: {self.bloom_bits} is not a positive multiple of 64")
        for name in ("failed_login_half_life_s", "order_rate_fast_half_life_s",
                     "order_rate_slow_half_life_s", "habit_half_life_s", "liquidation_window_s",
                     "session_ttl_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AccountParams.{name}: must be > 0, got {getattr(self, name)}")

    def kernel(self) -> "_KernelParams":
        """The same parameters in the units the kernels use (ms, time constants)."""
        tau = lambda half_life_s: half_life_s * 1000.0 / math.log(2.0)  # noqa: E731
        return _KernelParams(
            tau(self.failed_login_half_life_s), tau(self.order_rate_fast_half_life_s),
            tau(self.order_rate_slow_half_life_s), tau(self.habit_half_life_s),
            int(self.liquidation_window_s * 1000), float(self.margin_rare_share),
            int(self.session_ttl_s * 1000), int(self.session_probe), float(self.never_logged_in_secs),
            np.uint64(stable_hash64(self.home_country)))


_KernelParams = namedtuple("_KernelParams", "tau_fail_ms tau_fast_ms tau_slow_ms tau_habit_ms "
                           "liquidation_ms margin_rare_share session_ttl_ms session_probe never_secs "
                           "home_country")

# One row per account. Decayed sums are stored as of their *_ms stamp.
ACCOUNT_STATE = np.dtype([
    ("last_login_ms", np.int64), ("last_login_failed", np.float64),  # last login_success/session_start
    ("failed_logins", np.float64), ("failed_ms", np.int64),          # decayed login_failure count
    ("first_order_ms", np.int64), ("last_order_ms", np.int64),
    ("orders_fast", np.float64), ("orders_slow", np.float64),        # decayed order counts
    ("habit_weight", np.float64), ("habit_notional", np.float64), ("habit_margin", np.float64),
    ("sell_episode_ms", np.int64), ("sell_episode_sold", np.float64),
    ("sell_episode_holdings", np.float64),
    ("last_login_flags", np.uint8), ("traded_overseas", np.uint8),
    # Baselines: per-session EWMA sums and weights, and this session's pending part.
    ("habit_liquidation", np.float64), ("habit_sells", np.float64),
    # habit_thin_x sums thin_ticker_notional_x_adv over buys: its mean is the account's
    # usual share of a ticker's day, the level usual_thin_buy holds a buy against.
    ("habit_thin_x", np.float64), ("habit_buys", np.float64),
    ("pending_liquidation", np.float64), ("pending_sells", np.float64),
    ("pending_thin_x", np.float64), ("pending_buys", np.float64),
], align=True)

# _seen of an id no account holds: never "idle", so a sweep passes it by.
FREE = np.iinfo(np.int64).max

# One row per open session, keyed by the session hash (0 = empty slot).
SESSION_STATE = np.dtype([
    ("key", np.uint64), ("stamp_ms", np.int64), ("account", np.int64),
    ("ip", np.uint64), ("device", np.uint64), ("user_agent", np.uint64),
    ("failed", np.float64), ("new_flags", np.uint8),
], align=True)


def _empty_row(dtype: np.dtype) -> np.ndarray:
    """A state row meaning "nothing seen": stamps NEVER, holdings unknown, the rest 0."""
    row = np.zeros((), dtype)
    for name in dtype.names:
        if name.endswith("_ms"):
            row[name] = NEVER_MS
    if "sell_episode_holdings" in dtype.names:
        row["sell_episode_holdings"] = np.nan
    return row


@numba.njit(cache=True)
def _stamp_seen(seen, ids, ts_ms):
    """Each account's last event time: the latest of its stamp and the batch's events.

    An id stamped FREE (never used, or freed) takes the event's time, not max(). The
    readable twin, which costs a paced worker's one-order call ~10x more (``ufunc.at``)::

        seen[ids[seen[ids] == FREE]] = NEVER_MS
        np.maximum.at(seen, ids, ts_ms)
    """
    for k in range(len(ids)):
        i = ids[k]
        if seen[i] == FREE:
            seen[i] = NEVER_MS
        if ts_ms[k] > seen[i]:
            seen[i] = ts_ms[k]


@numba.njit(cache=True)
def _usual_share(usual, this):
    """How usual an order's size of a behaviour (``this``) is against the account's usual
    size of it (``usual``), 0..1: min(usual / this, 1); an order with none of it is usual
    where the account has a habit, and nothing is usual where it has none (0 / 0 reads 0).

    A discount that asked only whether the behaviour ever happened would let one small
    instance of it launder any later one; this one discounts a buy forty times the
    account's usual size by at most 1/40.
    """
    if this <= 0.0:
        return 1.0 if usual > 0.0 else 0.0
    return min(usual / this, 1.0)


@numba.njit(cache=True)
def _open_session(a, bloom_row, sessions, account, t, session, attributes, p):
    """Learn one login's attributes into the account's filter and record the session it opens."""
    failed = a.failed_logins * decay(t - a.failed_ms, p.tau_fail_ms)
    has_history = a.last_login_ms != NEVER_MS
    flags = 0
    for k in range(len(attributes)):
        seen = bloom_test_and_add(bloom_row, k, attributes[k])
        if has_history and not seen:
            flags |= 1 << k
    if not has_history:
        flags |= 1 << UNKNOWN_BIT
    if attributes[0] == 0:
        flags |= 1 << NO_DEVICE_BIT
    if not has_history and attributes[3] != 0 and attributes[3] != p.home_country:
        flags |= 1 << FOREIGN_BIT  # a known account abroad shows as new_country instead
    # A new session: what the account did in the earlier ones becomes its baseline.
    a.habit_liquidation = a.habit_liquidation * HABIT_SESSION_KEEP + a.pending_liquidation
    a.habit_sells = a.habit_sells * HABIT_SESSION_KEEP + a.pending_sells
    a.habit_thin_x = a.habit_thin_x * HABIT_SESSION_KEEP + a.pending_thin_x
    a.habit_buys = a.habit_buys * HABIT_SESSION_KEEP + a.pending_buys
    a.pending_liquidation = 0.0
    a.pending_sells = 0.0
    a.pending_thin_x = 0.0
    a.pending_buys = 0.0
    a.last_login_ms = t
    a.last_login_flags = flags
    a.last_login_failed = failed
    if session != 0:
        slot, _ = table_claim(sessions, session, t, p.session_ttl_ms, p.session_probe)
        s = sessions[slot]
        s.stamp_ms = t
        s.account = account
        s.ip = attributes[1]
        s.device = attributes[0]
        s.user_agent = attributes[4]
        s.failed = failed
        s.new_flags = flags
    return flags, failed


@numba.njit(cache=True)
def _learn_auth(acc, bloom, sessions, account, kind, ts_ms, session, ip, device, asn, country,
                user_agent, p, login_out):
    """Walk auth events in order: failures feed the decayed count, logins open sessions.

    ``login_out`` row i: the login's flags (new_* bits, UNKNOWN_BIT, FOREIGN_BIT,
    NO_DEVICE_BIT) and its decayed failed-login count; flags -1 for an event that opens
    no session. What the login alone says, for acting on it before any order.
    """
    for i in range(account.shape[0]):
        a = acc[account[i]]
        t = ts_ms[i]
        login_out[i, 0] = -1.0
        login_out[i, 1] = 0.0
        if kind[i] == LOGIN_FAILURE:
            a.failed_logins = a.failed_logins * decay(t - a.failed_ms, p.tau_fail_ms) + 1.0
            a.failed_ms = max(a.failed_ms, t)
        elif kind[i] == LOGIN_SUCCESS or kind[i] == SESSION_START:
            attributes = (device[i], ip[i], asn[i], country[i], user_agent[i])
            flags, failed = _open_session(a, bloom[account[i]], sessions, account[i], t,
                                          session[i], attributes, p)
            login_out[i, 0] = flags
            login_out[i, 1] = failed


@numba.njit(cache=True)
def _differs(seen_on_order, seen_at_login):
    """True when both hashes are present and different."""
    return seen_on_order != 0 and seen_at_login != 0 and seen_on_order != seen_at_login


@numba.njit(cache=True)
def _transform_orders(acc, bloom, sessions, account, ticker, is_buy, qty, price, margin, overseas,
                      ts_ms, session, ip, device, user_agent, holdings_value, ticker_adv_value,
                      p, out):
    """Walk orders in order: write each one's ACCOUNT_FEATURES row, then learn it."""
    for i in range(account.shape[0]):
        a = acc[account[i]]
        t = ts_ms[i]
        notional = qty[i] * price[i]
        if not np.isfinite(notional):
            notional = 0.0

        # The login behind the order: its session's, else the account's last one.
        slot = -1
        if session[i] != 0:
            slot = table_find(sessions, session[i], t, p.session_ttl_ms, p.session_probe)
        mismatch = 0.0
        if slot >= 0 and sessions[slot].account == account[i]:
            s = sessions[slot]
            login_ms, flags, failed = s.stamp_ms, s.new_flags, s.failed
            # Another device or agent on the session is a replayed cookie; another IP
            # alone may be a phone changing networks, so it counts half.
            if _differs(device[i], s.device) or _differs(user_agent[i], s.user_agent):
                mismatch = 1.0
            elif _differs(ip[i], s.ip):
                mismatch = MISMATCH_UNSEEN_IP
                if bloom_test(bloom[account[i]], 1, ip[i]):
                    mismatch = MISMATCH_KNOWN_IP
        else:
            login_ms, flags, failed = a.last_login_ms, a.last_login_flags, a.last_login_failed
        secs = p.never_secs
        if login_ms != NEVER_MS:
            secs = min(max((t - login_ms) / 1000.0, 0.0), p.never_secs)

        # Rate and size against the account's own habits (cold start reads neutral).
        has_orders = a.last_order_ms != NEVER_MS
        if not has_orders:
            a.first_order_ms = t
        # Rates count the orders *before* this one, so a steady rate reads 1.0
        # whatever its speed (counting this one too would add 1/window to each).
        dt = t - a.last_order_ms
        age = t - a.first_order_ms
        orders_fast = a.orders_fast * decay(dt, p.tau_fast_ms)
        orders_slow = a.orders_slow * decay(dt, p.tau_slow_ms)
        rate_x = 1.0
        if orders_slow > 0:
            rate_x = ((orders_fast / observed_window_ms(age, p.tau_fast_ms))
                      / (orders_slow / observed_window_ms(age, p.tau_slow_ms)))
        a.orders_fast = orders_fast + 1.0
        a.orders_slow = orders_slow + 1.0
        d = decay(dt, p.tau_habit_ms)
        weight, habit_notional, habit_margin = a.habit_weight * d, a.habit_notional * d, a.habit_margin * d
        notional_x = notional / (habit_notional / weight) if habit_notional > 0 else 1.0
        sudden_margin = margin[i] and has_orders and habit_margin < p.margin_rare_share * weight
        a.habit_weight = weight + 1.0
        a.habit_notional = habit_notional + notional
        a.habit_margin = habit_margin + (1.0 if margin[i] else 0.0)
        a.last_order_ms = max(a.last_order_ms, t)

        # Sell episode: sells within liquidation_ms of the episode's first sell.
        in_episode = t - a.sell_episode_ms <= p.liquidation_ms
        if not is_buy[i]:
            if not in_episode:
                # The episode before ends: its share sold joins this session's baseline part.
                if a.sell_episode_ms != NEVER_MS and a.sell_episode_holdings > 0:
                    a.pending_liquidation += min(max(
                        a.sell_episode_sold / a.sell_episode_holdings, 0.0), 1.0)
                    a.pending_sells += 1.0
                a.sell_episode_ms = t
                a.sell_episode_sold = 0.0
                a.sell_episode_holdings = np.nan
                in_episode = True
            if np.isnan(a.sell_episode_holdings) and not np.isnan(holdings_value[i]):
                a.sell_episode_holdings = holdings_value[i] + a.sell_episode_sold
            a.sell_episode_sold += notional
        liquidation = 0.0
        if in_episode and a.sell_episode_holdings > 0:
            liquidation = min(max(a.sell_episode_sold / a.sell_episode_holdings, 0.0), 1.0)

        # Novelty of what is bought: learned from buys and sells, reported on buys.
        ticker_seen = bloom_test_and_add(bloom[account[i]], 5, np.uint64(ticker[i]) + np.uint64(1))
        first_buy = is_buy[i] and has_orders and not ticker_seen
        first_overseas = is_buy[i] and overseas[i] and has_orders and a.traded_overseas == 0
        if overseas[i]:
            a.traded_overseas = 1
        thin_x = 0.0
        if is_buy[i] and ticker_adv_value[i] > 0:
            thin_x = notional / ticker_adv_value[i]
        usual_liquidation = a.habit_liquidation / a.habit_sells if a.habit_sells > 0 else 0.0
        usual_thin = 0.0
        if a.habit_buys > 0:
            usual_thin = _usual_share(a.habit_thin_x / a.habit_buys, thin_x)
        if is_buy[i]:
            a.pending_thin_x += thin_x
            a.pending_buys += 1.0

        row = out[i]  # columns in ACCOUNT_FEATURES order
        row[0] = secs
        for k in range(5):
            row[1 + k] = (flags >> k) & 1
        row[6] = failed
        row[7] = mismatch
        row[8] = rate_x
        row[9] = notional_x
        row[10] = liquidation
        row[11] = first_buy
        row[12] = thin_x
        row[13] = first_overseas
        row[14] = sudden_margin
        row[15] = usual_liquidation
        row[16] = usual_thin
        row[17] = (flags >> UNKNOWN_BIT) & 1
        row[18] = (flags >> FOREIGN_BIT) & 1
        row[19] = 1.0 if login_ms != NEVER_MS and flags & _NOT_USUAL_DEVICE == 0 else 0.0


@numba.njit(cache=True)
def _account_events(acc, bloom, sessions, run_is_order, run_length,
                    a_account, a_kind, a_ts_ms, a_session, a_ip, a_device, a_asn, a_country,
                    a_user_agent,
                    account, ticker, is_buy, qty, price, margin, overseas, ts_ms, session, ip,
                    device, user_agent, holdings_value, ticker_adv_value, p, out, login_out):
    """Walk logins and orders merged in event time: runs of one kind, each in its own order."""
    a, o = 0, 0
    for r in range(run_is_order.shape[0]):
        n = run_length[r]
        if run_is_order[r]:
            _transform_orders(acc, bloom, sessions, account[o:o + n], ticker[o:o + n],
                              is_buy[o:o + n], qty[o:o + n], price[o:o + n], margin[o:o + n],
                              overseas[o:o + n], ts_ms[o:o + n], session[o:o + n], ip[o:o + n],
                              device[o:o + n], user_agent[o:o + n], holdings_value[o:o + n],
                              ticker_adv_value[o:o + n], p, out[o:o + n])
            o += n
        else:
            _learn_auth(acc, bloom, sessions, a_account[a:a + n], a_kind[a:a + n],
                        a_ts_ms[a:a + n], a_session[a:a + n], a_ip[a:a + n], a_device[a:a + n],
                        a_asn[a:a + n], a_country[a:a + n], a_user_agent[a:a + n], p,
                        login_out[a:a + n])
            a += n


class AccountFeatures:
    """Online account-takeover features; `transform_orders` both scores and learns.

    Accounts are dense ids (``account_id`` maps account keys to them, readmitting
    an account ``evict_idle`` moved to the cold tier); login
    attributes are `stable_hash64` values. The very first login an account
    shows us has no history to be new against, so all its new_* flags are 0;
    likewise an account's first order never counts as a first buy or first
    overseas trade.

    >>> from tradeguard.features.batches import AuthBatch, OrderBatch, LOGIN_SUCCESS
    >>> f = AccountFeatures()
    >>> def login(ts, device, session):
    ...     f.learn_auth(AuthBatch.from_columns(account=[0], kind=[LOGIN_SUCCESS], ts_ms=[ts],
    ...         session=[session], ip=[11], device=[device], asn=[12], country=[13], user_agent=[14]))
    >>> login(0, 100, 1); login(60_000, 200, 2)   # second login: a device never seen
    >>> x = f.transform_orders(OrderBatch.from_columns(account=[0], ticker=[3], is_buy=[False],
    ...     qty=[900], price=[1000.0], margin=[False], overseas=[False], ts_ms=[90_000], session=[2],
    ...     ip=[11], device=[200], user_agent=[14], holdings_value=[1e6], ticker_adv_value=[float("nan")]))
    >>> dict(zip(ACCOUNT_FEATURES, x[0].tolist()))["new_device"], float(x[0, 0]), float(x[0, 10])
    (1.0, 30.0, 0.9)
    """

    def __init__(self, params: AccountParams = AccountParams(), capacity: int = 1024) -> None:
        self.params = params
        self.ids = DenseIds()
        self._kernel_params = params.kernel()
        self._accounts = np.full(capacity, _empty_row(ACCOUNT_STATE))
        self._bloom = np.zeros((capacity, params.bloom_bits // 64), np.uint64)
        self._sessions = np.full(params.session_slots, _empty_row(SESSION_STATE))
        # Last event time per dense id (FREE where the id is free): what eviction reads.
        self._seen = np.full(capacity, FREE, np.int64)
        # Accounts out of the hot arrays: key -> zlib of their state row and Bloom row.
        self._cold: dict[str, bytes] = {}
        self._empty_record = _empty_row(ACCOUNT_STATE).tobytes() + bytes(self._bloom[:1].nbytes)

    @property
    def bytes_per_account(self) -> int:
        """Bytes of state arrays per account: state row, Bloom row, last event time (the
        session table is shared, see session_table_bytes)."""
        return (self._accounts.dtype.itemsize + self._bloom.itemsize * self._bloom.shape[1]
                + self._seen.itemsize)

    @property
    def session_table_bytes(self) -> int:
        return self._sessions.nbytes

    @property
    def hot_accounts(self) -> int:
        """Accounts whose state is in the hot arrays (by key)."""
        return len(self.ids)

    @property
    def cold_accounts(self) -> int:
        return len(self._cold)

    @property
    def cold_bytes(self) -> int:
        """Packed bytes of the cold tier (the blobs alone, not the dict holding them)."""
        return sum(map(len, self._cold.values()))

    def account_id(self, key: str) -> int:
        """The dense id of account ``key``, readmitting it from the cold tier if it left.

        Call before the kernels see the id: a readmitted account's row and filter are
        back exactly as they were packed.
        """
        found = self.ids.get(key)
        if found >= 0:
            return found
        found = self.ids.get_or_add(key)
        self._grow(found + 1)
        packed = self._cold.pop(key, None)
        if packed is not None:
            record = zlib.decompress(packed)
            row_bytes = ACCOUNT_STATE.itemsize
            self._accounts[found] = np.frombuffer(record[:row_bytes], ACCOUNT_STATE)[0]
            self._bloom[found] = np.frombuffer(record[row_bytes:], np.uint64)
        return found

    def evict_idle(self, before_ms: int, keep: Collection[str] = (),
                   limit: int | None = None) -> list[str]:
        """Move the accounts with no event at or after ``before_ms`` to the cold tier.

        Their rows are reset and their ids freed for new accounts. Accounts in ``keep``
        stay hot; at most ``limit`` leave (lowest ids first). An account whose state
        still reads "nothing seen" leaves no record: readmitted, it starts empty, as it
        would. Returns the keys evicted.
        """
        idle = np.flatnonzero(self._seen[:self.ids.span] < before_ms)
        if keep:
            idle = np.array([i for i in idle.tolist() if self.ids.key_of(i) not in keep], np.int64)
        idle = idle[:limit]
        if not len(idle):
            return []
        # Each account's record is its state row's bytes then its Bloom row's, cut from two
        # bulk copies; all-default ones ("nothing seen") are not kept.
        records = np.concatenate([
            np.frombuffer(self._accounts[idle].tobytes(), np.uint8).reshape(len(idle), -1),
            self._bloom[idle].view(np.uint8)], axis=1)
        empty = (records == np.frombuffer(self._empty_record, np.uint8)).all(axis=1)
        key_of, remove, cold, compress = self.ids.key_of, self.ids.remove, self._cold, zlib.compress
        evicted = []
        for i, record, nothing in zip(idle.tolist(), records, empty.tolist()):
            key = key_of(i)
            if not nothing:
                cold[key] = compress(record.tobytes(), 1)
            remove(key)
            evicted.append(key)
        self._accounts[idle] = _empty_row(ACCOUNT_STATE)
        self._bloom[idle] = 0
        self._seen[idle] = FREE
        return evicted

    def _grow(self, needed: int) -> None:
        if needed <= min(len(self._accounts), len(self._bloom), len(self._seen)):
            return  # the usual case: no "nothing seen" row to build
        self._accounts = grown(self._accounts, needed, _empty_row(ACCOUNT_STATE))
        self._bloom = grown(self._bloom, needed, 0)
        self._seen = grown(self._seen, needed, FREE)

    def _reserve(self, batch, name: str = "account") -> None:
        """Check the batch's account ids, grow the per-account arrays to hold them, and
        stamp each account's last event time."""
        ids = getattr(batch, name)
        if len(ids) == 0:
            return
        require(batch, name, ids >= 0, "account ids must be >= 0")
        self._grow(int(ids.max()) + 1)
        _stamp_seen(self._seen, ids, batch.ts_ms)

    def learn_auth(self, batch: AuthBatch) -> np.ndarray:
        """Learn login successes, failures and session starts (kind OTHER is ignored).

        Returns each event's login row (n, 2): flags and failed-login count (``login_rows``).
        """
        self._reserve(batch)
        require(batch, "kind", (batch.kind >= 0) & (batch.kind <= 3), "kind must be 0..3")
        login_out = np.empty((len(batch), 2), np.float64)
        _learn_auth(self._accounts, self._bloom, self._sessions, batch.account, batch.kind,
                    batch.ts_ms, batch.session, batch.ip, batch.device, batch.asn, batch.country,
                    batch.user_agent, self._kernel_params, login_out)
        return login_out

    def transform_orders(self, batch: OrderBatch) -> np.ndarray:
        """Features of each order (n, len(ACCOUNT_FEATURES)), each seeing the orders before it."""
        self._reserve(batch)
        require(batch, "ticker", batch.ticker >= 0, "ticker ids must be >= 0")
        out = np.empty((len(batch), len(ACCOUNT_FEATURES)), np.float64)
        _transform_orders(self._accounts, self._bloom, self._sessions, batch.account, batch.ticker,
                          batch.is_buy, batch.qty, batch.price, batch.margin, batch.overseas,
                          batch.ts_ms, batch.session, batch.ip, batch.device, batch.user_agent,
                          batch.holdings_value, batch.ticker_adv_value, self._kernel_params, out)
        return out

    def process(self, auth: AuthBatch, orders: OrderBatch, runs: np.ndarray) -> np.ndarray:
        """``process_with_logins`` without the login rows: the orders' features."""
        return self.process_with_logins(auth, orders, runs)[0]

    def process_with_logins(self, auth: AuthBatch, orders: OrderBatch,
                            runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logins and orders merged in event time, in one kernel call; the orders' features.

        ``runs`` is an (r, 2) int array of (is_order, length): the merged sequence as
        runs of one kind. It is exactly ``learn_auth`` and ``transform_orders`` called
        run by run, without a Python round trip per run.
        """
        runs = np.ascontiguousarray(runs, dtype=np.int64).reshape(-1, 2)
        is_order, length = runs[:, 0], runs[:, 1]
        # Python sums: a run list is a handful of pairs, numpy's per-call cost is not.
        covered = [0, 0]
        for kind, n in runs.tolist():
            if kind in (0, 1):
                covered[kind] += n
        if covered[1] != len(orders) or covered[0] != len(auth):
            raise ValueError(f"runs cover {covered[0]} auth events and {covered[1]} orders; "
                             f"the batches have {len(auth)} and {len(orders)}")
        self._reserve(auth)
        self._reserve(orders)
        require(auth, "kind", (auth.kind >= 0) & (auth.kind <= 3), "kind must be 0..3")
        require(orders, "ticker", orders.ticker >= 0, "ticker ids must be >= 0")
        out = np.empty((len(orders), len(ACCOUNT_FEATURES)), np.float64)
        login_out = np.empty((len(auth), 2), np.float64)
        _account_events(self._accounts, self._bloom, self._sessions, is_order.copy(),
                        length.copy(), auth.account, auth.kind, auth.ts_ms, auth.session, auth.ip,
                        auth.device, auth.asn, auth.country, auth.user_agent,
                        orders.account, orders.ticker, orders.is_buy, orders.qty, orders.price,
                        orders.margin, orders.overseas, orders.ts_ms, orders.session, orders.ip,
                        orders.device, orders.user_agent, orders.holdings_value,
                        orders.ticker_adv_value, self._kernel_params, out, login_out)
        return out, login_out

    def to_bytes(self) -> bytes:
        cold_keys, cold = list(self._cold), list(self._cold.values())
        lengths = np.fromiter(map(len, cold), np.int64, len(cold))
        return _snapshot.pack(self.params, {
            "accounts": self._accounts, "bloom": self._bloom, "sessions": self._sessions,
            "seen": self._seen,
            "cold_keys": np.frombuffer(json.dumps(cold_keys).encode(), np.uint8),
            "cold_lengths": lengths,
            "cold_records": np.frombuffer(b"".join(cold), np.uint8)}, self.ids)

    @classmethod
    def from_bytes(cls, data: bytes) -> "AccountFeatures":
        params, arrays, ids = _snapshot.unpack(data, AccountParams)
        restored = cls(params, capacity=1)
        restored._accounts, restored._bloom = arrays["accounts"], arrays["bloom"]
        restored._sessions, restored.ids = arrays["sessions"], ids
        restored._seen = arrays["seen"]
        records = arrays["cold_records"].tobytes()
        ends = np.cumsum(arrays["cold_lengths"]).tolist()
        keys = json.loads(arrays["cold_keys"].tobytes().decode())
        restored._cold = {key: records[end - n:end] for key, n, end in
                          zip(keys, arrays["cold_lengths"].tolist(), ends)}
        return restored
