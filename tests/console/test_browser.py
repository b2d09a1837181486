"""The console in a real browser: an analyst and a supervisor watch a takeover raise a halt.

Headless Chromium (Debian's chromium + chromium-driver) drives the real console
on the real broker, with a real worker deciding a scripted takeover. What the
operators do must show up on Kafka: the release as a control record carrying
the supervisor's identity, and every attempt in the audit trail.
"""

from __future__ import annotations

import io
import threading
import time

import pytest

from tradeguard.broker.clients import TopicReader
from tradeguard.demo.run import replay_session
from tradeguard.demo.session import TARGET, scripted_session
from tests.console.conftest import OPERATORS

pytestmark = pytest.mark.broker

WAIT_S = 120


def _wait(driver, condition, timeout=WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def steady(action, attempts: int = 50):
    """Run ``action(driver-side lookups)``, again if the page swapped the element meanwhile.

    The page replaces its live fragments every refresh, so an element found a moment
    ago may be gone when it is clicked or read.
    """
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)  # up to 5 s: CI saw ten swaps in a row (0.5 s) on a loaded machine


def log_in(driver, base: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(OPERATORS[name][1])
    driver.find_element(By.ID, "login").click()
    _wait(driver, lambda d: d.find_element(By.ID, "whoami").text == name, 20)


def submit(driver, button_id: str, reason: str) -> None:
    """Fill the reason field of the form holding ``button_id``, press it, wait for the answer."""
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.ID, button_id)
    form = button.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.NAME, "reason").send_keys(reason)
    button.click()
    _wait(driver, lambda _: _gone(button), 20)  # the next page has loaded


def _gone(element) -> bool:
    """The element left the document: the page it was on was replaced.

    Selenium's ``staleness_of`` knows one way of saying so; Chromium sometimes says it
    another, as an inspector error ("Node with given id does not belong to the document",
    CI on Apache Kafka, 8 December), which ``staleness_of`` let through as a failure.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise


def test_analyst_cannot_release_a_halt_a_supervisor_can_and_kafka_has_both(
        engine_settings, start_worker, console, browser, artifacts):
    from selenium.webdriver.common.by import By

    base = console.url
    worker = start_worker(engine_settings)
    script = scripted_session(minutes=12, accounts=16, hijacked=3)
    replay = threading.Thread(target=replay_session, daemon=True,
                              args=(engine_settings, script, 60.0, io.StringIO()))

    analyst = browser("analyst")
    log_in(analyst, base, "ana")
    cookie = {c["name"]: c for c in analyst.get_cookies()}["__Host-tradeguard-session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert "No buy halts in force" in steady(lambda: analyst.find_element(By.ID, "halts").text)

    # The attack plays while the analyst watches the overview: the halt arrives by the
    # page's own refresh, no reload.
    replay.start()
    row = f'#halts tr.halt[data-ticker="{TARGET}"]'
    _wait(analyst, lambda d: d.find_elements(By.CSS_SELECTOR, row), WAIT_S)
    assert worker.alive, worker.log_tail()
    _wait(analyst, lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts tr.decision.block"), 30)
    analyst.save_screenshot(str(artifacts / "1-analyst-overview-halt.png"))

    # The ticker page: the evidence, the charts, and no "Release now" for an analyst.
    # Found and clicked in one script: while the replay runs the overview swaps its live
    # fragments so often that a found link can go stale before the driver's click lands.
    assert analyst.execute_script(
        "const a = document.querySelector(arguments[0]); if (a) { a.click(); } return !!a;",
        f"{row} a")
    _wait(analyst, lambda d: d.find_elements(By.ID, "ticker-state"), 30)
    state = steady(lambda: analyst.find_element(By.ID, "ticker-state").text)
    assert "halt_buys" in state and "cust-000" in state, state
    assert analyst.find_elements(By.CSS_SELECTOR, "#ticker svg polyline")
    assert not analyst.find_elements(By.ID, "release-halt-now")
    analyst.save_screenshot(str(artifacts / "2-analyst-ticker.png"))

    # An analyst who edits the form to release at once is refused by the server.
    analyst.execute_script(
        "document.querySelector('#release-halt-propose').form.mode.value = 'now';")
    submit(analyst, "release-halt-propose", "looks like real news to me")
    message = analyst.find_element(By.ID, "message").text
    assert "Not permitted" in analyst.title
    assert "releasing a halt needs a supervisor" in message, message
    analyst.save_screenshot(str(artifacts / "3-analyst-release-refused.png"))

    # The analyst may propose it instead; the proposal waits for someone else.
    analyst.get(f"{base}/tickers/{TARGET}")
    submit(analyst, "release-halt-propose", "issuer published results; buyers look genuine")
    assert "release_halt %s: proposed" % TARGET in analyst.find_element(By.CLASS_NAME,
                                                                         "flash").text
    assert "halt_buys" in steady(lambda: analyst.find_element(By.ID, "ticker-state").text)
    assert not analyst.find_elements(By.CSS_SELECTOR, "#proposals button[id^=approve-]")
    analyst.get(base + "/")
    _wait(analyst, lambda d: d.find_elements(By.CSS_SELECTOR, "#audit tr.audit.proposed"), 10)
    analyst.save_screenshot(str(artifacts / "4-analyst-overview-proposed.png"))

    # The supervisor, in a browser of her own, releases it.
    supervisor = browser("supervisor")
    log_in(supervisor, base, "sue")
    supervisor.get(f"{base}/tickers/{TARGET}")
    assert supervisor.find_elements(By.CSS_SELECTOR, "#proposals button[id^=approve-]")
    submit(supervisor, "release-halt-now", "checked with the issuer: results day")
    assert f"release_halt {TARGET}: done" in supervisor.find_element(By.CLASS_NAME,
                                                                      "flash").text
    _wait(supervisor, lambda d: "release" in steady(
        lambda: d.find_element(By.ID, "ticker-state").text), 10)
    supervisor.get(base + "/")
    _wait(supervisor, lambda d: d.find_elements(By.CSS_SELECTOR, "#audit tr.audit.done"), 10)
    supervisor.save_screenshot(str(artifacts / "5-supervisor-released.png"))

    # On Kafka: the release carries the supervisor's identity; the audit trail has the
    # refused attempt, the proposal and the release, each with who, why, before and after.
    def complete(records):
        audit = [r for n, r in records if n == "audit" and r["target"] == TARGET]
        return {(a["actor"], a["outcome"]) for a in audit} >= {
            ("ana", "denied"), ("ana", "proposed"), ("sue", "done")}

    with TopicReader(engine_settings, "controls.tickers", "audit") as reader:
        records = reader.read_until(complete, 30)
    assert complete(records), records
    controls = [r for n, r in records if n == "controls.tickers" and r["ticker"] == TARGET]
    halt = next(c for c in controls if c["action"] == "halt_buys" and c["source"] == "engine")
    (release,) = [c for c in controls if c["action"] == "release" and c["source"] != "engine"]
    assert release["source"] == "console:sue"
    assert release["evidence"]["operator"] == {"user": "sue", "role": "supervisor",
                                               "auth": "local"}
    assert release["reason"] == "checked with the issuer: results day"
    audit = {(a["actor"], a["outcome"]): a for n, a in records
             if n == "audit" and a["target"] == TARGET}
    denied, done = audit[("ana", "denied")], audit[("sue", "done")]
    assert denied["action"] == "release_halt" and denied["actor_role"] == "analyst"
    assert denied["reason"] == "looks like real news to me" and denied["after"] is None
    assert denied["before"] == halt
    assert done["before"] == halt and done["after"] == release
    assert release["evidence"]["audit_id"] == done["audit_id"]
    assert done["remote_addr"] == "127.0.0.1"
    logins = {(n, r["actor"]) for n, r in TopicReader(
        engine_settings, "audit").read_until(lambda rs: len(rs) >= 5, 10)
        if r["action"] == "login"}
    assert {("audit", "ana"), ("audit", "sue")} <= logins
