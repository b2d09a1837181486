"""Records, metrics and waits shared by the fault tests (real worker, real broker)."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tradeguard.runtime.settings import Settings

__all__ = ["login", "metric", "now_ms", "order", "scrape", "wait_until"]


def now_ms() -> int:
    return int(time.time() * 1000)


def order(order_id: str, account: str, ticker: str = "7203", side: str = "buy",
          ts: int | None = None, **extra) -> dict:
    return {"order_id": order_id, "account_id": account, "ticker": ticker, "side": side,
            "qty": 100, "price": 2500.0, "margin": False, "session_id": f"s-{account}",
            "ts": now_ms() if ts is None else ts, **extra}


def login(account: str, ts: int | None = None) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0",
            "country": "JP", "asn": 2516, "ts": now_ms() - 60_000 if ts is None else ts}


def scrape(settings: Settings) -> dict[tuple[str, frozenset], float]:
    """The worker's /metrics as {(sample name, labels): value}."""
    url = f"http://{settings.web_host}:{settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(settings: Settings, name: str, **labels: str) -> float:
    """One sample (0 when the worker has not created it yet, or is not serving yet)."""
    try:
        return scrape(settings).get((name, frozenset(labels.items())), 0.0)
    except OSError:
        return 0.0


def wait_until(condition, timeout_s: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout_s:g}s\n{log()}")
