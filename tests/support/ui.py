"""The UI under test: a live ``dermassist ui`` subprocess, and Debian's Chromium driven by Playwright.

Gradio pages never reach ``networkidle`` (the queue keeps a connection open): wait for ``load``, then for an
element. Chromium runs headless with everything that phones home switched off, so a test also sees whether the
page itself tries to reach anything beyond loopback.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from support.net import free_port
from support.paths import BIN
from support.servers import Server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPORT_TIMEOUT_MS = 480_000  # a report on a loaded 2-core machine; far less on an idle one


def ui_server(*args: str, log_name: str, env: dict[str, str] | None = None) -> Server:
    """``dermassist ui ARGS`` on a free loopback port, ready when its page answers."""
    port = free_port()
    return Server([str(BIN / "dermassist"), "ui", "--port", str(port), *args], port, log_name, ready_path="/",
                  timeout_s=420.0, env=env)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (Debian's package, never Playwright's download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, *, requests: list[str] | None = None):
    """A fresh browser context (its own cookies and session) on the UI; ``requests`` collects every URL asked."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="load")
    page.wait_for_selector("#da-submit", timeout=60_000)
    return page


def upload(page, *paths: Path) -> None:
    page.locator("#da-photos input[type=file]").set_input_files([str(p) for p in paths])


def quality_text(page, contains: str, timeout_s: float = 60.0) -> str:
    """The photo-advice panel once it says ``contains``."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page.locator("#da-quality .da-quality").inner_text()
        if contains in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"the photo panel never said {contains!r}; it says {text!r}")


def fill(page, selector: str, value: str) -> None:
    page.locator(f"{selector} textarea, {selector} input").first.fill(value)


def choose(page, selector: str, option: str) -> None:
    """Pick an option of a Gradio dropdown."""
    page.locator(f"{selector} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def wait_for_report(page, steps: list[str] | None = None) -> None:
    """Wait for the triage badge, recording the step tracker's states as they stream (``steps``)."""
    deadline = time.monotonic() + REPORT_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if page.locator("#da-report .da-triage").count():
            return
        alert = page.locator("#da-alert .da-alert-error")  # (a warning from before the run may still show)
        if alert.count():
            raise AssertionError(f"the UI showed an error instead of a report: {alert.inner_text()}")
        if steps is not None:
            running = page.locator("#da-progress .da-step-running")
            if running.count():
                step = running.first.get_attribute("data-step")
                if step and (not steps or steps[-1] != step):
                    steps.append(step)
        time.sleep(0.2)
    raise AssertionError("no report within the time limit")


def alert_text(page, timeout_s: float = 60.0) -> str:
    page.wait_for_selector("#da-alert .da-alert", timeout=timeout_s * 1000)
    return page.locator("#da-alert .da-alert").inner_text()
