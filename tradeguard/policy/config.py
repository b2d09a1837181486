"""Policy configuration: one TOML file of thresholds and weights, reloadable in place."""

from __future__ import annotations

import hashlib
import logging
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_POLICY_FILE", "PolicyConfig", "PolicyError", "PolicyFile", "SIGNAL_GROUPS", "Signal",
           "policy_version"]

DEFAULT_POLICY_FILE = Path(__file__).with_name("default.toml")
log = logging.getLogger(__name__)


class PolicyError(ValueError):
    """The policy file is unusable; the message names the key."""


#: Signal groups. ``session``: is the person behind the order the customer (the login, the
#: session, shared infrastructure)? A passed step-up explains this evidence away.
#: ``action``: is the order the kind an attacker places? ``model``: the learned scores.
SIGNAL_GROUPS = ("session", "action", "model")


@dataclass(frozen=True)
class Signal:
    """How one feature turns into evidence, in log-odds of fraud:
    ``weight * clip((value - offset) / scale, 0, 1) * (1 - clip(discount_by, 0, 1))``.

    ``discount_by`` names a feature in 0..1 that says how usual this order's size of the
    behaviour is for the account (``usual_thin_buy``): what the customer always does is weak
    evidence; one small instance of it does not make a far larger one usual.
    """

    weight: float
    scale: float
    offset: float = 0.0
    group: str = "action"
    discount_by: str | None = None


@dataclass(frozen=True)
class PolicyConfig:
    #: log-odds of fraud for an order with no evidence at all: the base rate.
    prior_log_odds: float
    hold_at: float
    block_at: float
    max_reasons: int
    signals: dict[str, Signal]
    step_up_at: float
    freeze_at: float
    #: A step-up unanswered this long (event time) freezes the account.
    step_up_timeout_s: float
    #: For how long, and how much of the session evidence, a passed step-up explains away.
    verified_for_s: float
    verified_discount: float
    risky_account_at: float
    halt_risky_buyers: int
    halt_risky_share: float
    window_s: float
    halt_ttl_s: float
    #: During a halt, buys the engine allows with no session evidence still pass.
    halt_spares_clean_sessions: bool = False
    #: ...a session whose evidence (log-odds) is below this counts as clean.
    halt_exempt_below: float = 0.0
    #: One campaign buy halts: a caught account sharing login infrastructure with at least
    #: ``campaign_link_accounts`` accounts (itself included), buying at least this share of
    #: the ticker's normal daily value. 0 accounts: off.
    campaign_link_accounts: float = 0.0
    #: Risky buyers that halt even when fewer than ``halt_risky_buyers`` of them are linked.
    halt_unlinked_buyers: float = 2.0
    campaign_buy_adv_share: float = 0.01
    #: Score successful logins by their session evidence alone and step up those reaching
    #: ``step_up_at`` before any order (tradeguard/core/logins.py).
    step_up_on_login: bool = False
    #: How long a login step-up waits for the login's own factor when the engine cannot know
    #: whether the account has one (an account it has never seen log in), seconds.
    factor_wait_s: float = 0.0
    #: ASNs of hosting and VPN networks (``[network] hosting_asns``): a login from one the
    #: account never used is the ``hosting_network`` signal.
    hosting_asns: frozenset = frozenset()
    #: Names of the session-group signals (derived from ``signals``).
    session_signals: frozenset = frozenset()
    #: Content hash of the policy in force (the merged document), carried by every decision.
    version: str = "policy-unversioned"

    @classmethod
    def defaults(cls) -> "PolicyConfig":
        return cls.from_toml(DEFAULT_POLICY_FILE.read_text())

    @classmethod
    def from_toml(cls, text: str, base: dict[str, Any] | None = None) -> "PolicyConfig":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file is not valid TOML: {exc}") from None
        if base is not None:
            doc = _merge(base, doc)
        return cls._from_doc(doc)

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> "PolicyConfig":
        def num(section: str, key: str, lo: float = 0.0, hi: float = float("inf")) -> float:
            try:
                value = doc[section][key]
            except KeyError:
                raise PolicyError(f"[{section}] {key} is missing") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PolicyError(f"[{section}] {key} must be a number, got {value!r}")
            if not lo <= value <= hi:
                raise PolicyError(f"[{section}] {key} must be in [{lo:g}, {hi:g}], got {value!r}")
            return float(value)

        signals = {}
        for name, spec in doc.get("order", {}).get("signals", {}).items():
            if not isinstance(spec, dict):
                raise PolicyError(f"[order.signals.{name}] must be a table, got {spec!r}")
            unknown = set(spec) - _SIGNAL_KEYS
            if unknown:
                raise PolicyError(f"[order.signals.{name}] unknown key(s) {sorted(unknown)}; "
                                  f"known: {sorted(_SIGNAL_KEYS)}")
            for key in ("weight", "scale", "offset"):
                value = spec.get(key, 0.0)
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or value != value or value in (float("inf"), float("-inf")):
                    raise PolicyError(f"[order.signals.{name}] {key} must be a finite number, "
                                      f"got {value!r}")
            discount_by = spec.get("discount_by")
            if discount_by is not None and discount_by not in _baseline_features():
                raise PolicyError(f"[order.signals.{name}] discount_by must name one of "
                                  f"{sorted(_baseline_features())}, got {discount_by!r}")
            try:
                sig = Signal(float(spec["weight"]), float(spec["scale"]),
                             float(spec.get("offset", 0.0)), str(spec.get("group", "action")),
                             spec.get("discount_by"))
            except (KeyError, TypeError, ValueError):
                raise PolicyError(f"[order.signals.{name}] needs numeric weight and scale") from None
            if not 0 <= sig.weight <= 20 or sig.scale <= 0:
                raise PolicyError(f"[order.signals.{name}] weight must be in [0, 20] (log-odds) "
                                  f"and scale > 0, got weight {sig.weight:g}, scale {sig.scale:g}")
            if sig.group not in SIGNAL_GROUPS:
                raise PolicyError(f"[order.signals.{name}] group must be one of "
                                  f"{', '.join(SIGNAL_GROUPS)}, got {sig.group!r}")
            if sig.discount_by is not None and not isinstance(sig.discount_by, str):
                raise PolicyError(f"[order.signals.{name}] discount_by must name a feature, "
                                  f"got {sig.discount_by!r}")
            signals[name] = sig
        cfg = cls(
            prior_log_odds=num("order", "prior_log_odds", -30, 30),
            hold_at=num("order", "hold_at", 0, 1),
            block_at=num("order", "block_at", 0, 1),
            max_reasons=int(num("order", "max_reasons", 1, 32)),
            signals=signals,
            step_up_at=num("account", "step_up_at", 0, 1),
            freeze_at=num("account", "freeze_at", 0, 1),
            step_up_timeout_s=num("account", "step_up_timeout_s", 1),
            verified_for_s=num("account", "verified_for_s", 0),
            verified_discount=num("account", "verified_discount", 0, 1),
            risky_account_at=num("ticker", "risky_account_at", 0, 1),
            halt_risky_buyers=int(num("ticker", "halt_risky_buyers", 1)),
            halt_risky_share=num("ticker", "halt_risky_share", 0, 1),
            window_s=num("ticker", "window_s", 1),
            halt_ttl_s=num("ticker", "halt_ttl_s", 1),
            halt_spares_clean_sessions=_flag(doc, "ticker", "halt_spares_clean_sessions"),
            halt_exempt_below=num("ticker", "halt_exempt_below", 0, 20),
            campaign_link_accounts=num("ticker", "campaign_link_accounts", 0),
            halt_unlinked_buyers=num("ticker", "halt_unlinked_buyers", 1),
            campaign_buy_adv_share=num("ticker", "campaign_buy_adv_share", 0),
            hosting_asns=_asn_list(doc, "network", "hosting_asns"),
            step_up_on_login=_flag(doc, "account", "step_up_on_login"),
            factor_wait_s=num("account", "factor_wait_s", 0, 3600)
            if "factor_wait_s" in doc.get("account", {}) else 0.0,
            session_signals=frozenset(n for n, sig in signals.items() if sig.group == "session"),
            version=policy_version(doc),
        )
        if cfg.hold_at > cfg.block_at:
            raise PolicyError("[order] hold_at must not exceed block_at")
        if cfg.step_up_at > cfg.freeze_at:
            raise PolicyError("[account] step_up_at must not exceed freeze_at")
        bucket_s = _ticker_bucket_s()
        if not float(cfg.window_s / bucket_s).is_integer():
            # the ticker side cuts its window into buckets: any other window loaded here and
            # then failed at the first order flow (TickerParams)
            raise PolicyError(f"[ticker] window_s must be a whole number of {bucket_s:g} s "
                              f"buckets, got {cfg.window_s:g}")
        return cfg


_SIGNAL_KEYS = frozenset({"weight", "scale", "offset", "group", "discount_by"})


def _ticker_bucket_s() -> float:
    """The ticker features' bucket: the resolution of ``[ticker] window_s``."""
    from tradeguard.features.ticker import TickerParams

    return TickerParams.bucket_s


def _baseline_features() -> frozenset[str]:
    """Account features in 0..1 that say how usual something is for the account."""
    from tradeguard.features.account import ACCOUNT_FEATURES

    return frozenset(f for f in ACCOUNT_FEATURES if f.startswith("usual_"))


def _asn_list(doc: dict[str, Any], section: str, key: str) -> frozenset:
    """A list of AS numbers (positive integers), named in the error when it is not one."""
    value = doc.get(section, {}).get(key, [])
    if not isinstance(value, list):
        raise PolicyError(f"[{section}] {key} must be a list of AS numbers, got {value!r}")
    for asn in value:
        if isinstance(asn, bool) or not isinstance(asn, int) or not 0 < asn < 2**32:
            raise PolicyError(f"[{section}] {key}: {asn!r} is not an AS number (1 to 2^32 - 1)")
    return frozenset(value)


def _flag(doc: dict[str, Any], section: str, key: str) -> bool:
    value = doc.get(section, {}).get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(f"[{section}] {key} must be true or false, got {value!r}")
    return value


def policy_version(doc: dict[str, Any]) -> str:
    """``policy-<12 hex>``: a hash of the policy's content, not of its file's bytes.

    Comments, key order and keys restating a default do not change it; any value
    that changes a decision does.
    """
    import orjson

    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return "policy-" + hashlib.sha256(canonical).hexdigest()[:12]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class PolicyFile:
    """The policy in force, re-read from its file when the file changes.

    ``current()`` is cheap (one ``stat`` at most every ``check_every_s``), so the
    agents call it per batch and a changed file takes effect without a restart.
    """

    def __init__(self, path: str | Path | None = None, check_every_s: float = 1.0) -> None:
        self.path = Path(path) if path else None
        self.check_every_s = check_every_s
        self._defaults = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
        self._mtime: float | None = None
        self._checked_at = float("-inf")
        self._config = PolicyConfig._from_doc(self._defaults)
        if self.path is not None:
            if not self.path.is_file():
                raise PolicyError(f"policy file {self.path} does not exist")
            self._load()  # a bad file at start-up is fatal: better than running blind

    def _load(self) -> None:
        assert self.path is not None
        # Remember the mtime first: a broken file is reported once, not every second.
        self._mtime = self.path.stat().st_mtime
        self._config = PolicyConfig.from_toml(self.path.read_text(), base=self._defaults)

    def current(self, now: float | None = None) -> PolicyConfig:
        if self.path is None:
            return self._config
        now = time.monotonic() if now is None else now
        if now - self._checked_at >= self.check_every_s:
            self._checked_at = now
            try:
                if self.path.stat().st_mtime != self._mtime:
                    self._load()
                    log.info("policy reloaded from %s", self.path)
            except (OSError, PolicyError) as exc:
                log.error("policy reload failed, keeping the previous policy: %s", exc)
        return self._config
