"""The analyst console under load: first paint, and responsiveness at 5,000 decisions/s.

    python -m benchmarks.console [--rate 5000] [--seconds 20] [--json FILE]

Starts the embedded broker and ``tradeguard console`` in a process of its own
(as deployed), produces decisions and their orders at ``--rate`` per second
from this process, and meanwhile drives headless Chromium (Debian's chromium
and chromedriver) through Selenium:

- *first paint*: Chromium's ``first-contentful-paint`` for the overview page,
  idle and under load (five loads each);
- *responsiveness*: for ``--seconds`` under load the overview refreshes itself
  as an operator would see it; the page's own timings (``tradeguardStats``:
  fetch and render per update) and the main thread's lag (a 50 ms timer's
  lateness) are collected, with the size of each update;
- *keeping up*: the console's own measured decision rate and the age of its
  newest decision, from ``/api/summary``, and its process CPU and memory.

Every process started here is stopped by its pid. Numbers depend on the
machine; the run prints what it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer
from tradeguard.broker.embedded import EmbeddedBroker, free_port
from tradeguard.console.users import UserStore
from tradeguard.runtime.settings import Settings
from tradeguard.runtime.signals import die_with_parent

PASSWORD = "benchmark-password-1"
LAG_PROBE = """
window.tgLag = [];
let last = performance.now();
setInterval(() => { const now = performance.now(); window.tgLag.push(now - last - 50);
                    last = now; }, 50);
"""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Load(threading.Thread):
    """Decisions (with their orders) at ``rate`` per second until stopped."""

    def __init__(self, settings: Settings, rate: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.rate, self.sent = settings, rate, 0
        self.halt = threading.Event()
        self.started = self.elapsed = 0.0

    def run(self) -> None:
        gateway = GatewayProducer(self.settings, **{"linger.ms": 5})
        rng = random.Random(1)
        tickers = [str(1000 + i) for i in range(200)]
        started = self.started = time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            now = int(time.time() * 1000)
            for _ in range(due - self.sent):
                i = self.sent
                action = rng.choices(("allow", "hold", "block"), (96, 3, 1))[0]
                order = {"order_id": f"b-{i}", "account_id": f"acct-{rng.randrange(20_000)}",
                         "ticker": rng.choice(tickers), "side": rng.choice(("buy", "sell")),
                         "qty": 100 * rng.randrange(1, 20), "price": 1500.0, "margin": False,
                         "session_id": None, "ts": now}
                reasons = [] if action == "allow" else [
                    {"code": "new_device", "value": 1.0}, {"code": "liquidation_ratio",
                                                           "value": round(rng.random(), 3)}]
                gateway.send("orders", order)
                gateway.send("decisions", {
                    "order_id": order["order_id"], "account_id": order["account_id"],
                    "ticker": order["ticker"], "side": order["side"], "action": action,
                    "score": 0.1 if action == "allow" else 0.7, "reasons": reasons,
                    "model_version": "bench", "order_ts": now, "ts": now})
                self.sent += 1
            gateway.poll()
            self.elapsed = time.monotonic() - started
            time.sleep(0.005)
        gateway.flush()


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1440,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def _first_paints(driver, url: str, n: int = 5) -> list[float]:
    out = []
    for _ in range(n):
        driver.get(url)
        fcp = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "new PerformanceObserver(list => {"
            "  const e = list.getEntriesByName('first-contentful-paint')[0];"
            "  if (e) done(e.startTime);"
            "}).observe({type: 'paint', buffered: true});"
            "setTimeout(() => done(null), 5000);")
        if fcp is None:
            raise RuntimeError("Chromium reported no first-contentful-paint within 5 s")
        out.append(fcp)
    return out


def _summary(base: str) -> dict:
    # The console's JSON needs a session; the benchmark logs in through the browser and
    # reads the summary through it instead, so this is only for the process's health.
    with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
        return json.loads(r.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5_000, help="decisions per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="time under load")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    import psutil

    workdir = Path(tempfile.mkdtemp(prefix="tradeguard-bench-console-"))
    users = UserStore(workdir / "users")
    users.add("bench", "analyst", PASSWORD)
    port = free_port()
    results: dict = {"rate_offered": args.rate, "seconds": args.seconds,
                     "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        settings = Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile, partitions=4)
        create_topics(settings)
        env = {**os.environ, "TRADEGUARD_BROKER": broker.url,
               "TRADEGUARD_CONSOLE_USERS_FILE": str(users.path),
               "TRADEGUARD_CONSOLE_PORT": str(port)}
        console = subprocess.Popen([sys.executable, "-m", "tradeguard.cli.main", "console"],
                                   env=env, stdout=open(workdir / "console.log", "wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=die_with_parent())
        driver = None
        load = Load(settings, args.rate)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if _summary(base)["ready"]:
                        break
                except OSError:
                    time.sleep(0.2)
            proc = psutil.Process(console.pid)
            driver = _browser(workdir / "chromium")
            driver.get(base + "/login")
            driver.find_element("id", "username").send_keys("bench")
            driver.find_element("id", "password").send_keys(PASSWORD)
            driver.find_element("id", "login").click()
            time.sleep(0.5)
            results["first_paint_idle_ms"] = _first_paints(driver, base + "/")

            load.start()
            time.sleep(3)  # the stream is flowing before we look
            results["first_paint_loaded_ms"] = _first_paints(driver, base + "/")
            driver.get(base + "/")
            driver.execute_script(LAG_PROBE)
            proc.cpu_percent()
            sizes = []
            t_end = time.monotonic() + args.seconds
            while time.monotonic() < t_end:
                time.sleep(1.0)
                size = driver.execute_script(
                    "return document.querySelector('[data-fragment=stream]').innerHTML.length "
                    "+ document.querySelector('[data-fragment=alerts]').innerHTML.length;")
                sizes.append(size)
            cpu = proc.cpu_percent()
            stats = driver.execute_script("return window.tradeguardStats;")
            lag = driver.execute_script("return window.tgLag;")
            summary = driver.execute_script(
                "return fetch('/api/summary').then(r => r.json());")
            results.update({
                "decisions_sent": load.sent,
                "rate_sent": load.sent / load.elapsed,
                "console_rate_seen": summary["rate"],
                "console_last_decision_age_s": summary["last_decision_age_s"],
                "console_decisions_absorbed": sum(summary["actions"].values()),
                "console_cpu_percent": cpu,
                "console_rss_mb": proc.memory_info().rss / 2**20,
                "updates": stats["updates"],
                "fetch_ms": stats["fetchMs"],
                "render_ms": stats["renderMs"],
                "main_thread_lag_ms": lag,
                "fragment_html_chars": sizes,
                "load_avg_end": os.getloadavg()[0],
            })
        finally:
            load.halt.set()
            if driver is not None:
                driver.quit()
            console.terminate()
            try:
                console.wait(10)
            except subprocess.TimeoutExpired:
                console.kill()
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _report(r: dict) -> None:
    def dist(values):
        return (f"p50 {_pct(values, .5):.1f} / p95 {_pct(values, .95):.1f} / "
                f"max {max(values):.1f}") if values else "–"

    print(f"console benchmark: {r['cpus']} CPUs, load average {r['load_avg_start']:.2f} → "
          f"{r.get('load_avg_end', float('nan')):.2f}")
    rows = [
        ("first contentful paint, idle (ms)", dist(r["first_paint_idle_ms"])),
        ("first contentful paint at the offered rate (ms)", dist(r["first_paint_loaded_ms"])),
        ("decisions offered / s", f"{r['rate_sent']:,.0f}"),
        ("decisions the console counted / s (its 10 s window)", f"{r['console_rate_seen']:,.0f}"),
        ("age of the console's newest decision at the end (s)",
         f"{r['console_last_decision_age_s']:.2f}"),
        ("page updates in the run", f"{r['updates']}"),
        ("update: fetch + JSON (ms)", dist(r["fetch_ms"])),
        ("update: swap fragments in (ms)", dist(r["render_ms"])),
        ("browser main-thread lag, 50 ms timer (ms)", dist(r["main_thread_lag_ms"])),
        ("live stream + alert HTML per update (chars)", dist(r["fragment_html_chars"])),
        ("console process CPU (% of one core)", f"{r['console_cpu_percent']:.0f}"),
        ("console process RSS (MB)", f"{r['console_rss_mb']:.0f}"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    sys.exit(main())
