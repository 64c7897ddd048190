"""The playground page in a real headless browser (Debian's chromium, driven
by Selenium through Debian's chromedriver; nothing downloads a browser),
served by `local.sh up` as `make local` serves it, against the local stack:
a key entered, two text models compared, a bad request's message shown, the
history listing the job; at desktop and phone widths, screenshots saved;
no console errors, and axe-core finds no serious or critical violation."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import PLAYGROUND_PORT, Deployment, new_key
from tests.templates import ROOT

pytestmark = pytest.mark.e2e
AXE_JS = ROOT / ".tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / ".local" / "screenshots"
URL = f"http://127.0.0.1:{PLAYGROUND_PORT}/"
MODELS = ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (shutil.which("chromium") and shutil.which("chromedriver") and AXE_JS.exists()):
        subprocess.run(["bash", str(ROOT / "infrastructure/scripts/install.sh"), "--tools", "browser"], check=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def wait_for(condition, timeout: float = 60, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s")


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def accessibility_violations(driver) -> list[dict]:
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then((r) => done(JSON.stringify(r.violations)));"
    )
    return [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"playground-{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def test_two_models_side_by_side_in_the_browser(deployment: Deployment, browser):
    key = new_key(deployment)
    browser.get(URL)
    assert browser.title == "genstack playground"
    browser.find_element("id", "api-key").send_keys(key)
    browser.find_element("css selector", "#key-form button[type=submit]").click()
    wait_for(lambda: "Key accepted" in text_of(browser, "key-status"), what="the key's models to load")
    # The key is kept in this tab's sessionStorage only: not in the URL, not in a cookie.
    assert browser.execute_script("return sessionStorage.getItem('genstack.apiKey')") == key
    assert key not in browser.current_url
    assert browser.get_cookies() == []
    wait_for(lambda: "spent of" in text_of(browser, "spend"), what="the month's spend")

    for model in MODELS:
        browser.find_element("css selector", f'input[name="model"][value="{model}"]').click()
    browser.find_element("id", "prompt").send_keys("Write a haiku about message queues")
    browser.find_element("id", "submit").click()
    wait_for(lambda: "COMPLETED" in text_of(browser, "job-summary"), what="the job to complete")

    columns = browser.find_elements("css selector", "#results article.result")
    assert [c.get_attribute("data-model") for c in columns] == list(MODELS)
    costs = []
    for column in columns:
        assert "SUCCEEDED" in column.find_element("css selector", ".status").text
        assert column.find_element("css selector", ".markdown").text  # the model's text, rendered
        meta = column.find_element("css selector", ".meta")
        assert "cost $" in meta.text
        assert "tokens" in meta.text
        costs.append(Decimal(meta.get_attribute("data-cost-usd")))
    summary = browser.find_element("id", "job-summary")
    assert Decimal(summary.get_attribute("data-total-usd")) == sum(costs) > 0  # the job's total is the sum
    assert "Total cost $" in summary.text
    job_id = summary.text.split()[1].rstrip(":")

    # The history lists the job (refreshed when it finished).
    (entry,) = wait_for(lambda: browser.find_elements("css selector", f'#history li[data-job-id="{job_id}"]'), what="the history")
    assert "COMPLETED" in entry.text
    # Reopened from the history: the same job, by keyboard.
    entry.find_element("css selector", "button").send_keys("\n")
    wait_for(lambda: job_id in text_of(browser, "job-summary") and browser.find_elements("css selector", "#results .result"))
    browser.set_window_size(1280, 1900)  # the whole page, from the top, for the README
    browser.execute_script("window.scrollTo(0, 0)")
    desktop = screenshot(browser, "desktop")
    assert not console_errors(browser)
    assert accessibility_violations(browser) == []

    browser.set_window_size(390, 844)  # a phone
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")  # nothing overflows
    screenshot(browser, "phone")
    assert accessibility_violations(browser) == []
    browser.set_window_size(1280, 1000)
    assert desktop.exists()


def test_a_bad_request_shows_the_apis_message_beside_the_form(deployment: Deployment, browser):
    browser.get(URL)
    wait_for(lambda: "Key accepted" in text_of(browser, "key-status"), what="the saved key to be used")
    for box in browser.find_elements("css selector", 'input[name="model"]:checked'):
        box.click()
    browser.find_element("id", "prompt").clear()
    browser.find_element("id", "prompt").send_keys("no models chosen")
    browser.find_element("id", "submit").click()
    error = wait_for(lambda: text_of(browser, "job-error"), what="the API's refusal")
    assert "models" in error
    assert "INVALID_REQUEST" in error
    # A budget the job's worst case does not fit: the 402 names the budget.
    browser.find_element("css selector", f'input[name="model"][value="{MODELS[0]}"]').click()
    browser.find_element("css selector", "details summary").click()
    browser.find_element("id", "budget").send_keys("0.000001")
    browser.find_element("id", "submit").click()
    wait_for(lambda: "budget" in text_of(browser, "job-error").lower(), what="the budget's refusal")
    browser.find_element("id", "budget").clear()
    browser.find_element("css selector", f'input[name="model"][value="{MODELS[0]}"]').click()
    # An empty prompt: the message goes beside the prompt, which it names.
    browser.find_element("css selector", f'input[name="model"][value="{MODELS[0]}"]').click()
    browser.find_element("id", "prompt").clear()
    browser.find_element("id", "submit").click()
    message = wait_for(lambda: text_of(browser, "prompt-error"), what="the prompt's error")
    assert "prompt" in message
    # The browser logged the refused requests (400, 402) and nothing else.
    assert all(" 400 " in line or " 402 " in line for line in console_errors(browser))
