"""The Lakewatch view in a real browser: headless Chromium (Debian's, at its system path; no browser download)
driven by Playwright, against the session's `airflow standalone`: log in, open the view from Airflow's
navigation, open the score run, open its top event, mark it false_alarm, find the label in the feedback table."""

from __future__ import annotations

import shutil

import pytest

from tests.services import AIRFLOW_PASSWORD
from tests.ui.conftest import feedback_rows

pytestmark = pytest.mark.airflow_server
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_an_analyst_marks_the_top_event_of_a_run_as_a_false_alarm(view):
    from playwright.sync_api import sync_playwright

    base = view["base"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/lakewatch/")
            assert "/auth/login" in page.url  # not logged in: Airflow's login page first
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", AIRFLOW_PASSWORD)
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{base}/lakewatch/", timeout=30_000)

            page.goto(f"{base}/")  # Airflow's own UI lists the view in its navigation
            page.get_by_text("Lakewatch", exact=True).first.wait_for(timeout=30_000)

            page.goto(f"{base}/lakewatch/")
            page.click(f"a[href$='/runs/{view['run_id']}']")
            page.wait_for_selector("table.events")
            top = page.locator("table.events tbody tr").first.locator("a").first
            event_id = top.inner_text()
            top.click()
            page.wait_for_selector("form#feedback")
            page.fill("input[name=note]", "planned failover")
            page.click("button[value=false_alarm]")
            page.wait_for_selector("table.history")
            assert page.inner_text("#current-label") == "false_alarm"
        finally:
            browser.close()
    rows = [r for r in feedback_rows(view["settings"]) if r["event_id"] == event_id]
    assert [(r["label"], r["author"], r["note"], r["source"]) for r in rows] == [
        ("false_alarm", "admin", "planned failover", "ui")]
