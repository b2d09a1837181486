"""Ground truth: what really happened in a session, for the scorecard and never for the engine.

Written beside the streams as one JSON file. Times are epoch milliseconds of
event time, like the records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Accomplice", "CampaignTruth", "FraudOrder", "GroundTruth", "HardNegative",
           "TakenOverAccount", "TargetedTicker"]


@dataclass(frozen=True)
class FraudOrder:
    """An order the attacker placed in a taken-over account."""

    order_id: str
    account_id: str
    campaign: str
    phase: str  # "liquidation" (selling the victim's holdings) or "pump" (buying a target)
    ticker: str
    side: str
    qty: int
    notional: float  # yen at the fill price
    ts: int


@dataclass(frozen=True)
class TakenOverAccount:
    """One unauthorized access; ``traded`` says whether fraudulent orders followed (~44%)."""

    account_id: str
    campaign: str
    technique: str  # phishing, aitm, infostealer or stuffing
    wave: int
    traded: bool
    access_ts: int  # when the attacker got in (for AiTM: when the victim's session was stolen)
    takeover_ts: int | None  # the attacker's first event the engine can see (login or order)
    first_fraud_ts: int | None
    first_fraud_buy_ts: int | None
    failed_logins: int
    margin: bool
    attacker_ip: str
    attacker_device_id: str
    attacker_asn: int
    attacker_country: str


@dataclass(frozen=True)
class TargetedTicker:
    ticker: str
    campaign: str
    tier: str
    market: str
    campaign_start_ts: int
    preposition_start_ts: int | None
    first_fraud_buy_ts: int | None
    dump_start_ts: int | None
    fraud_buys: int
    fraud_buy_notional: float


@dataclass(frozen=True)
class Accomplice:
    account_id: str
    campaign: str
    visible: bool  # False: trades at another broker, only its prints are on the tape
    order_ids: list[str]


@dataclass(frozen=True)
class CampaignTruth:
    name: str
    start_ts: int
    targets: list[str]
    accounts: list[str]
    accomplices: list[str]


@dataclass(frozen=True)
class HardNegative:
    """Legitimate behaviour that looks like an attack; every order in it is legitimate."""

    name: str
    kind: str
    start_ts: int
    end_ts: int
    accounts: list[str]
    tickers: list[str]
    order_ids: list[str]


@dataclass(frozen=True)
class GroundTruth:
    scenario: str
    seed: int
    warmup_start_ts: int
    open_ts: int
    close_ts: int
    fraud_orders: list[FraudOrder] = field(default_factory=list)
    accounts: list[TakenOverAccount] = field(default_factory=list)
    tickers: list[TargetedTicker] = field(default_factory=list)
    campaigns: list[CampaignTruth] = field(default_factory=list)
    accomplices: list[Accomplice] = field(default_factory=list)
    negatives: list[HardNegative] = field(default_factory=list)

    @property
    def fraud_order_ids(self) -> set[str]:
        return {o.order_id for o in self.fraud_orders}

    @property
    def targeted_tickers(self) -> set[str]:
        return {t.ticker for t in self.tickers}

    def negative_of(self, order_id: str) -> str | None:
        """The hard-negative scenario a legitimate order belongs to, if any."""
        return next((n.name for n in self.negatives if order_id in n.order_ids), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_json())
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GroundTruth":
        lists = {"fraud_orders": FraudOrder, "accounts": TakenOverAccount,
                 "tickers": TargetedTicker, "campaigns": CampaignTruth,
                 "accomplices": Accomplice, "negatives": HardNegative}
        return cls(**{k: [lists[k](**x) for x in v] if k in lists else v for k, v in d.items()})

    @classmethod
    def read(cls, path: str | Path) -> "GroundTruth":
        return cls.from_dict(orjson.loads(Path(path).read_bytes()))
