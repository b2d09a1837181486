"""Console fixtures: operators in a real users file, a console on a free port, headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tradeguard.broker.embedded import free_port
from tradeguard.console.config import ConsoleSettings
from tradeguard.console.server import ConsoleServer
from tradeguard.console.users import ScryptParams, UserStore

#: name -> (role, password). Cheap scrypt parameters keep the tests quick; the default
#: parameters are exercised by tests/console/test_units.py.
OPERATORS = {"vic": ("viewer", "viewer-password-1"), "ana": ("analyst", "analyst-password-1"),
             "abe": ("analyst", "analyst-password-2"),
             "sue": ("supervisor", "supervisor-password-1")}
FAST = ScryptParams(n=2**10, r=8, p=1)


@pytest.fixture
def users(tmp_path) -> UserStore:
    store = UserStore(tmp_path / "console-users")
    for name, (role, password) in OPERATORS.items():
        store.add(name, role, password, params=FAST)
    return store


@pytest.fixture
def console(engine_settings, users):
    """A console on the test's topics, started in this process and stopped after the test."""
    cfg = ConsoleSettings.from_env(env={}, port=free_port(), users_file=users.path,
                                   refresh_ms=300)
    with ConsoleServer(engine_settings, cfg, users) as server:
        yield server


@pytest.fixture
def artifacts(tmp_path, request) -> Path:
    """Where screenshots go: $TRADEGUARD_TEST_ARTIFACTS/<test name>, else the test's tmp_path."""
    root = os.environ.get("TRADEGUARD_TEST_ARTIFACTS")
    path = Path(root) / request.node.name if root else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _find_chromium() -> tuple[str, str] | None:
    browser = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                             "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path):
    """Start headless Chromium sessions (a fresh profile each); all are quit after the test."""
    found = _find_chromium()
    if found is None:
        pytest.skip("no Chromium and chromedriver on PATH: apt-get install chromium "
                    "chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = found
    started = []

    def start(name: str = "browser"):
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1440,1000",
                     f"--user-data-dir={tmp_path / f'chromium-{name}'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()  # ends the browser and its chromedriver, which this fixture started
