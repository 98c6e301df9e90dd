"""End to end in a real headless browser: Debian's chromium driven by Selenium with Debian's
chromedriver.

The dashboard runs as `custseg dashboard` would (the same command line, from
``server.command``) on a free local port against the session's small run.
The browser applies a filter and sees the charts and the table change, shows
a customer named like a script tag as literal text, and opens the report from
disk with the network off and finds every chart drawn.

No browser is ever downloaded: without chromium, chromedriver or selenium the
tests skip and say how to get them (``scripts/install-browser.sh`` as root,
``pip install selenium``).

``CUSTSEG_DOCS_DEMO=<folder of a custseg demo run>`` also refreshes
``docs/screenshots/*.png`` from that run (see docs/dashboard.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PAGES = ("overview", "segments", "methods", "explore", "customers", "runs")

# Per Plotly chart on the page: traces, points drawn (markers, bars, box samples), whether its SVG
# exists.
CHART_STATE_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  traces: (gd._fullData || []).length,
  points: (gd._fullData || []).reduce((a, t) => a + (t._length || 0), 0),
  drawn: !!gd.querySelector('.main-svg') && (gd.querySelectorAll('.cartesianlayer .trace, .hm, .heatmaplayer image').length > 0),
}));
"""  # noqa: E501 (JavaScript run in the browser, kept as written)


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or why the browser tests cannot run here."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; it belongs in the dev extra)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(
            n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None
        )
        return (
            f"no {missing} on this machine: run scripts/install-browser.sh as root "
            "(apt-get install chromium chromium-driver); browsers are never downloaded"
        )
    return chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(driver, script: str, timeout: float = 30.0, what: str = "condition"):
    """Poll a JavaScript expression until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def element(driver, css: str, timeout: float = 30.0):
    """The first element matching ``css`` once it exists (Streamlit renders, and re-renders,
    asynchronously)."""
    from selenium.webdriver.common.by import By

    wait_for(driver, f"return document.querySelector({css!r})", timeout, css)
    return driver.find_element(By.CSS_SELECTOR, css)


def type_into(driver, css: str, *keys: str, click: bool = True) -> None:
    """Click an input and type into it, again if Streamlit re-rendered it under our feet."""
    from selenium.common.exceptions import (
        ElementNotInteractableException,
        StaleElementReferenceException,
    )

    for attempt in range(3):
        try:
            box = element(driver, css)
            if click:
                box.click()
            for key in keys:
                box.send_keys(key)
            return
        except (StaleElementReferenceException, ElementNotInteractableException):
            if attempt == 2:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    chromium, chromedriver = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def start_dashboard(config):
    from custseg.dashboard import server

    port = free_port()
    argv, env = server.command(config, port=port)
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().decode() == "ok":
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the dashboard did not start:\n" + (process.stdout.read() or ""))
        time.sleep(0.3)


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def dashboard(browser, dash_lake):
    process, url = start_dashboard(dash_lake.config)
    yield url
    stop(process)


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def explore_state(driver) -> dict:
    return driver.execute_script(
        "const cap = Array.from(document.querySelectorAll('[data-testid=stCaptionContainer]'))"
        "  .map(e => e.innerText).find(t => t.startsWith('explore-selection'));"
        "const rows = Array.from(document.querySelectorAll('[data-testid=stTable] tbody tr'))"
        ".map(r => r.innerText);"
        + CHART_STATE_JS.replace("return ", "const charts = ", 1)
        + "return {caption: cap || null, rows: rows, charts: charts};"
    )


def full_page_screenshot(driver, path: Path, width: int = 1400) -> Path:
    """The whole Streamlit page (its content scrolls inside a container, so grow the window to
    fit)."""
    height = driver.execute_script(
        "const e = document.querySelector('[data-testid=stMainBlockContainer]');"
        "return e ? e.scrollHeight + 140 : document.body.scrollHeight;"
    )
    driver.set_window_size(width, max(900, min(int(height), 7000)))
    time.sleep(1.0)  # let Plotly re-lay out at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 1000)
    return path


def test_filter_updates_charts_and_table(browser, dashboard, dash_lake, tmp_path):
    from selenium.webdriver.common.keys import Keys

    from custseg import charts
    from custseg.store import gold

    browser.get(f"{dashboard}/explore")
    wait_for(
        browser,
        "return document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
        60,
        "3 charts",
    )
    wait_for(browser, "return document.querySelector('[data-testid=stTable]')", 30, "the table")
    before = explore_state(browser)
    total = len(dash_lake.features)
    assert before["caption"] == f"explore-selection: {total} customers"
    assert len(before["rows"]) == 4 and all(c["drawn"] for c in before["charts"])

    label = charts.segment_labels(gold.profiles(dash_lake.source))[2]
    type_into(browser, ".st-key-explore_segment input", label, Keys.ENTER, Keys.ESCAPE)
    size = int((gold.segments(dash_lake.source)["segment"] == 2).sum())
    wait_for(
        browser,
        "return Array.from(document.querySelectorAll('[data-testid=stCaptionContainer]'))"
        f".some(e => e.innerText === 'explore-selection: {size} customers')",
        30,
        "the filtered caption",
    )
    wait_for(
        browser,
        "return document.querySelectorAll('[data-testid=stTable] tbody tr').length === 1",
        30,
        "one table row",
    )
    time.sleep(0.5)  # Plotly finishes its transition
    after = explore_state(browser)
    assert len(after["rows"]) == 1 and after["rows"][0].startswith(label)
    assert len(after["charts"]) == len(before["charts"]) == 3
    for old, new in zip(before["charts"], after["charts"], strict=True):
        assert new["drawn"] and new["points"] < old["points"], (old, new)
    shot = full_page_screenshot(browser, tmp_path / "explore-filtered.png")
    assert shot.stat().st_size > 10_000
    assert no_alert(browser)


def test_customer_text_is_shown_literally(browser, dashboard, dash_lake):
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{dashboard}/customers")
    wait_for(
        browser, "return document.querySelector('.st-key-customers_mask')", 60, "the masking switch"
    )
    # Masked first: the literal name is nowhere on the page.
    wait_for(
        browser, "return document.querySelector('[data-testid=stTable]')", 30, "the customer detail"
    )
    assert dash_lake.hostile_name not in browser.execute_script("return document.body.innerText")

    element(browser, ".st-key-customers_mask label").click()
    wait_for(browser, "return document.body.innerText.includes('UNMASKED')", 30, "masking off")
    type_into(browser, ".st-key-customers_search input", dash_lake.hostile_id + Keys.ENTER)
    wait_for(
        browser,
        "return document.body.innerText.includes('customers-found: 1 ')",
        30,
        "the search result",
    )
    shown = wait_for(
        browser,
        "const t = document.querySelector('[data-testid=stTable]');"
        f"return t && t.innerText.includes({dash_lake.hostile_name!r}) ? t.innerText : null",
        30,
        "the literal name in the detail table",
    )
    assert dash_lake.hostile_name in shown
    assert no_alert(browser)
    injected = browser.execute_script(
        "return Array.from(document.querySelectorAll('script'))"
        ".filter(s => s.text.includes('alert(1)')).length"
    )
    assert injected == 0


def test_report_opens_offline_with_every_chart_drawn(browser, dash_lake, tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from custseg.report import render_report
    from custseg.storage import current_path
    from custseg.store.source import Source

    # A copy of the run whose profile texts carry markup, to see the report escape it.
    root = tmp_path / "lakehouse"
    shutil.copytree(dash_lake.source.lakehouse, root)
    live = current_path(root, "gold", "segment_profiles")
    profiles = pq.read_table(live).to_pandas()
    profiles["action"] = profiles["action"] + " " + dash_lake.hostile_name
    target = live.parent / "v00000099"
    target.mkdir()
    pq.write_table(
        pa.Table.from_pandas(pd.DataFrame(profiles), preserve_index=False),
        target / "part-0.parquet",
    )
    (target / "_SUCCESS").touch()
    (live.parent / "_current").write_text("v00000099\n")
    source = Source(lakehouse=root, tracking_uri=dash_lake.source.tracking_uri)
    report = render_report(source, tmp_path / "report.html")

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    try:
        browser.get("about:blank")
        browser.get_log("browser")  # drop earlier pages' messages
        browser.get(report.as_uri())
        expected = wait_for(
            browser,
            "return location.protocol === 'file:' && document.readyState === 'complete'"
            " && document.querySelectorAll('.chart').length",
            60,
            "the report",
        )
        assert (
            expected == 8
        )  # sizes, shares, z-scores, projection, comparison, k-distance, dendrogram, migration
        charts = wait_for(
            browser,
            "const s = Array.from(document.querySelectorAll('.chart')).map(c => {"
            "  const gd = c.querySelector('.js-plotly-plot');"
            "  return gd && gd._fullData && gd._fullData.length > 0"
            " && !!gd.querySelector('.main-svg') &&"
            "    gd.querySelectorAll('.cartesianlayer .trace, .hm, .heatmaplayer image')"
            ".length > 0; });"
            "return s.every(Boolean) ? s : null;",
            60,
            "every chart drawn",
        )
        assert len(charts) == expected
        text = browser.execute_script("return document.body.innerText")
        assert dash_lake.hostile_name in text  # escaped markup shows as text
        assert no_alert(browser)
        problems = [
            e["message"]
            for e in browser.get_log("browser")
            if e["level"] == "SEVERE" or "Content Security Policy" in e["message"]
        ]
        assert not problems, problems
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1300, min(int(height), 7000))
        time.sleep(0.5)
        assert browser.save_screenshot(str(tmp_path / "report.png"))
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        browser.set_window_size(1400, 1000)


@pytest.mark.skipif(
    not os.environ.get("CUSTSEG_DOCS_DEMO"),
    reason="set CUSTSEG_DOCS_DEMO to a demo run's folder to refresh docs/screenshots",
)
def test_docs_screenshots(browser):
    """Screenshots of every page (and the report) for docs/dashboard.md, from a `custseg demo`
    run."""
    from selenium.webdriver.common.keys import Keys

    from custseg.config import load_config
    from custseg.report import build_report

    folder = Path(os.environ["CUSTSEG_DOCS_DEMO"]).absolute()
    config = load_config(
        overrides={
            "storage.root": str(folder / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        }
    )
    process, url = start_dashboard(config)
    try:
        for page in PAGES:
            browser.get(url + ("/" if page == "overview" else f"/{page}"))
            wait_for(
                browser,
                "return document.querySelector('[data-testid=stMainBlockContainer] h1')",
                60,
                page,
            )
            time.sleep(4)  # charts and tables finish drawing
            full_page_screenshot(browser, DOCS / f"{page}.png")
        browser.get(f"{url}/explore")
        wait_for(
            browser,
            "return document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
            60,
            "explore",
        )
        for state in ("CA", "NY"):
            type_into(browser, ".st-key-explore_state input", state + Keys.ENTER)
            time.sleep(2)
        type_into(browser, ".st-key-explore_state input", Keys.ESCAPE, click=False)
        time.sleep(4)
        full_page_screenshot(browser, DOCS / "explore-filtered.png")
    finally:
        stop(process)
    report = build_report(config, folder / "report.html")
    browser.get(report.as_uri())
    time.sleep(4)
    browser.set_window_size(1300, 2600)
    time.sleep(1)
    browser.save_screenshot(str(DOCS / "report.png"))
    browser.set_window_size(1400, 1000)


def test_without_a_browser_the_skip_says_how_to_get_one(monkeypatch):
    pytest.importorskip("selenium")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    reason = find_browser()
    assert isinstance(reason, str), reason
    assert "no chromium and chromedriver" in reason and "scripts/install-browser.sh" in reason


def test_without_selenium_the_skip_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "selenium", None)  # makes `import selenium` raise ImportError
    reason = find_browser()
    assert isinstance(reason, str), reason
    assert "selenium is not installed" in reason and "pip install selenium" in reason
