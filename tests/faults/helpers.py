"""Records, metrics and waits shared by the fault tests (real worker, real broker)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tradeguard.runtime.settings import Settings

__all__ = ["SteadyOrders", "login", "metric", "now_ms", "order", "scrape", "wait_until"]


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


class SteadyOrders:
    """About 200 orders a second from 40 logged-in accounts, in a thread, while the block runs.

    ``decided()`` then reads ``decisions`` until every order sent is there (and 2 s more: a
    second decision of an order comes within the same reads) and counts each order's.
    """

    def __init__(self, settings: Settings, prefix: str) -> None:
        from tradeguard.broker.clients import GatewayProducer

        self.settings, self.prefix = settings, prefix
        self.accounts = [f"acct-{i:03d}" for i in range(40)]
        self.gateway = GatewayProducer(settings)
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SteadyOrders":
        for account in self.accounts:
            self.gateway.send("auth.events", login(account))
        self.gateway.flush()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self.gateway.flush()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            order_id = f"{self.prefix}-{i}"
            self.gateway.send("orders", order(order_id, self.accounts[i % len(self.accounts)]))
            self.sent.append(order_id)
            i += 1
            if i % 20 == 0:
                self.gateway.poll()
                time.sleep(0.1)

    def decided(self, timeout_s: float = 120) -> Counter:
        """How many decisions each order got (every order sent is a key, or the wait failed)."""
        from tradeguard.broker.clients import TopicReader

        expected = set(self.sent)
        with TopicReader(self.settings, "decisions") as reader:
            got = reader.read_until(
                lambda rs: expected <= {d["order_id"] for _, d in rs}, timeout_s)
            got += reader.poll(2.0)
        return Counter(d["order_id"] for _, d in got)
