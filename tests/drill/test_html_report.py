"""The drill's HTML report in a real headless browser (Debian's chromium, driven by Selenium
through Debian's chromedriver): it renders, the verdict is shown and the timeline chart is
present with its phase markers. CI installs chromium (.ci/run); elsewhere the test skips
without it."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.drill.html_report import CHART_ID, render

pytestmark = pytest.mark.browser

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
REPORT: dict[str, Any] = {
    "scenario": "region-outage", "ok": True, "broken": "the primary region is gone",
    "rto_seconds": 9.2, "degraded_seconds": 0.3, "rpo_seconds": 0.0,
    "critical_path_seconds": 8.1, "rto_to_critical_path_ratio": 1.136,
    "writes": {"acknowledged": 80, "failed": 40, "lost": 0},
    "objectives": [{"name": "orchestration overhead (RTO / critical path)",
                    "measured": 1.136, "target": "<= 1.15", "met": True, "meaning": "-"}],
    "verifications": [{"name": "promoted database accepts writes", "ok": True,
                       "detail": "a test write committed"},
                      {"name": "resolver answers <the serving site>", "ok": True,
                       "detail": "<script>alert(1)</script>"}],
    "series": {"bin_seconds": 0.5, "t": [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5],
               "acknowledged_per_second": [40, 40, 0, 0, 38, 40],
               "failed_per_second": [0, 0, 40, 40, 2, 0]},
    "markers": [{"label": "outage", "t": 0.0}, {"label": "detection", "t": 0.3},
                {"label": "promotion", "t": 8.1}, {"label": "traffic switch", "t": 8.15},
                {"label": "writable service (RTO)", "t": 9.2},
                {"label": "first good write", "t": 9.22}],
    "timeline": [{"t": 0.0, "event": "OUTAGE"}],
}


def _chromium() -> str:
    found = next((c for c in CHROMIUM if Path(c).is_file()), None)
    if found is None or not Path(CHROMEDRIVER).is_file():
        if os.environ.get("CI") == "true":
            raise AssertionError("chromium and chromedriver must be installed in CI (.ci/run)")
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser: Any, report: dict[str, Any], tmp_path: Path) -> Any:
    page = tmp_path / f"{report['scenario']}.html"
    page.write_text(render(report), encoding="utf-8")
    browser.get(page.as_uri())
    return browser


def test_the_report_renders_with_its_chart_in_a_real_browser(browser: Any,
                                                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = _open(browser, REPORT, tmp_path)
    assert page.title == "Drill region-outage: PASS"
    assert page.find_element(By.ID, "verdict").text.endswith("PASS")
    chart = page.find_element(By.CSS_SELECTOR, f"#{CHART_ID} svg")
    assert chart.is_displayed()
    assert chart.size["width"] > 400 and chart.size["height"] > 200
    # Drawn, not an empty frame: the two write-rate lines and a dashed line per marker.
    assert len(chart.find_elements(By.CSS_SELECTOR, "path")) > 10
    text = chart.text
    for label in ("outage", "detection", "promotion", "traffic switch",
                  "writable service (RTO)", "first good write", "writes failed / s"):
        assert label in text, label
    # Evidence is escaped: a check's detail cannot inject markup into the page.
    assert page.find_elements(By.TAG_NAME, "script") == []
    assert "<script>alert(1)</script>" in page.find_element(By.ID, "checks").text


def test_a_failed_drill_shows_fail_and_the_failed_check(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = copy.deepcopy(REPORT)
    report["ok"] = False
    report["verifications"][0]["ok"] = False
    page = _open(browser, report, tmp_path)
    assert page.title == "Drill region-outage: FAIL"
    [failed] = page.find_elements(By.CSS_SELECTOR, "#checks tr.failed")
    assert "promoted database accepts writes" in failed.text and "FAILED" in failed.text
