"""The console in a real browser: Debian's chromium, headless, driven by Selenium through
/usr/bin/chromedriver (`make test` installs both when missing).

With ``DOCKLINE_SCREENSHOTS=DIR`` set, the test also saves the page as it goes
(``console.png`` and ``console-ledger.png``): the README's pictures come from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.console.conftest import FIXED_CSV, HOSTILE_KEY, HOSTILE_VALUE, Console, Receiver, World, drop

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 60  # a loaded 2-core machine: generous, and only ever waited on, never slept

pytestmark = pytest.mark.slow

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        needs = f"needs {CHROMIUM} and {CHROMEDRIVER} (`make browser` installs them: apt-get)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{needs}: `make test` must have installed them")  # CI fails instead of skipping
        pytest.skip(needs)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dockline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # script errors, CSP refusals
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, what: str, check: Callable[[Any], Any]) -> Any:
    """``check``'s first truthy answer. The page redraws a list when its data changes, so
    an element found a moment ago may be gone: such a look is simply tried again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver,
        WAIT_SECONDS,
        poll_frequency=0.2,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    return wait.until(check, message=f"waiting for {what}")


def _click(driver: Any, what: str, css: str) -> None:
    _wait(driver, what, lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def _cells(driver: Any, css: str) -> list[list[str]]:
    """The text of each cell of the rows ``css`` selects, read in one go in the page."""
    found: list[list[str]] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((r) => [...r.cells].map((c) => c.innerText));", css
    )
    return found


def _text(driver: Any, element_id: str) -> str:
    """An element's text, read in the page in one step (the status is redrawn every 5 s)."""
    script = "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;"
    return str(driver.execute_script(script, element_id))


def _shot(driver: Any, name: str) -> None:
    folder = os.environ.get("DOCKLINE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def test_the_page_shows_status_charts_and_its_buttons_work(
    world: World, receiver: Receiver, console: Callable[..., Console], browser: Any
) -> None:
    # GIVEN a data dir with processed files, a failed CSV (markup in its key and reason) that
    # is dead-lettered, refused deliveries, and the console serving it
    served = console(world.data_dir, world.config)
    expected = world.status()

    # WHEN the page loads
    browser.get(served.url)
    _wait(browser, "the status", lambda d: _text(d, "files-processed") == "3")

    # THEN it loaded without a script error, a refused resource or a CSP violation
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    # and its numbers are those of `dockline status --json`
    for state, count in expected["files"].items():
        assert _text(browser, f"files-{state}") == str(count), state
    for state, count in expected["deliveries"].items():
        assert _text(browser, f"deliveries-{state}") == str(count), state
    assert _text(browser, "dead-letters-count") == str(expected["dead_letters"])
    assert _text(browser, "backlog-files") == str(expected["backlog"]["files"])

    # and the charts have drawn the settled files: 3 processed and 1 failed in the outcome
    # chart's data, the throughput chart's files/s summing to the same 4 files
    charts = _wait(
        browser,
        "the charts",
        lambda d: d.execute_script(
            "const o = Chart.getChart('outcomes-chart'), t = Chart.getChart('throughput-chart');"
            "if (!o || !t || !o.data.labels.length) return null;"
            "const sum = (a) => a.reduce((x, y) => x + y, 0);"
            "const sets = Object.fromEntries(o.data.datasets.map((s) => [s.label, sum(s.data)]));"
            "return {sets, minutes: o.data.labels.length, files: sum(t.data.datasets[0].data) * 60,"
            " records: sum(t.data.datasets[1].data) * 60};"
        ),
    )
    assert charts["minutes"] == 60
    assert charts["sets"]["processed"] == 3 and charts["sets"]["failed"] == 1
    assert round(charts["files"]) == 4
    assert round(charts["records"]) == 5  # two documents and three NDJSON lines
    # and the canvases are not blank: the bars have pixels in their colours
    painted = browser.execute_script(
        "const c = document.getElementById('outcomes-chart'); const g = c.getContext('2d');"
        "const px = g.getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 0; i < px.length; i += 4) if (px[i+3] && px[i] > 150 && px[i+1] < 120) n++;"  # the bars' red
        "let green = 0; for (let i = 0; i < px.length; i += 4) if (px[i+3] && px[i+1] > 120 && px[i] < 60) green++;"
        "return [n, green];"
    )
    assert painted[0] > 20 and painted[1] > 20, painted

    # and user data is shown as text: the key and the reason literally, nothing of them run
    (letter,) = _wait(browser, "the dead letter", lambda d: _cells(d, "#dead-letters tbody tr"))
    assert letter[0] == HOSTILE_KEY
    assert HOSTILE_VALUE in letter[4]
    (failed,) = _cells(browser, "#failed-files tbody tr")
    assert failed[0] == HOSTILE_KEY and HOSTILE_VALUE in failed[3]
    assert browser.execute_script("return window.__xss === undefined && document.scripts.length === 2")
    assert not browser.find_elements(By.CSS_SELECTOR, "#dead-letters img, #failed-files img")

    # WHEN the file is fixed and its Redrive button pressed
    drop(world.data_dir, HOSTILE_KEY, FIXED_CSV)
    _click(browser, "the Redrive button", "#dead-letters tbody tr button.redrive")
    # THEN the letter is gone from the page and from `dlq list`, and the file is processed
    _wait(browser, "the redrive's result", lambda d: "-> processed" in _text(d, "action-result"))
    _wait(browser, "the letter to go", lambda d: not d.find_elements(By.CSS_SELECTOR, "#dead-letters tbody tr"))
    _wait(browser, "the status to follow", lambda d: _text(d, "files-processed") == "4")
    assert world.cli("dlq", "list", "--json").strip() == "[]"
    assert world.status()["files"]["processed"] == 4

    # WHEN the receiver accepts again and a notification's Redeliver button is pressed
    receiver.answer = 204
    nid = _wait(
        browser,
        "an undelivered notification",
        lambda d: d.execute_script(
            "const r = [...document.querySelectorAll('#deliveries tbody tr')].find((r) =>"
            " r.querySelector('.delivery:not(.state-delivered)'));"
            "return r ? Number(r.dataset.id) : null;"
        ),
    )
    _click(browser, "its Redeliver button", f'#deliveries tr[data-id="{nid}"] button.redeliver')
    # THEN the real receiver got that notification and the page shows it delivered
    _wait(browser, "the redeliver's result", lambda d: "1 delivered" in _text(d, "action-result"))
    assert nid in [body["id"] for body in receiver.bodies]
    _wait(
        browser,
        "the delivery to show delivered",
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#deliveries tr[data-id="{nid}"] .delivery.state-delivered'),
    )

    # WHEN the ledger browser searches by pk prefix
    box = browser.find_element(By.NAME, "pk")
    box.clear()
    box.send_keys("order-")
    browser.find_element(By.CSS_SELECTOR, "#browse button[type=submit]").click()
    # THEN it lists just those items, payloads exact
    _wait(browser, "the search", lambda d: _text(d, "browse-more") == "2 items")
    shown = _cells(browser, "#browse-results tbody tr")
    assert sorted(row[0] for row in shown) == ["order-1", "order-2"]
    assert '{"id":"order-1","total":19.99}' in [row[3] for row in shown]
    browser.execute_script("document.getElementById('browse').scrollIntoView()")
    _shot(browser, "console-ledger.png")


def _an_hour_of_work(data_dir: Path, config: Path, now: datetime) -> dict[str, int]:
    """Settle files minute by minute over the last 45 minutes, as engines whose clock is
    set to each minute would. Returns the files settled by outcome."""
    from dockline.config import load_settings
    from dockline.local.engine import LocalEngine

    settings = load_settings(config)
    outcomes = {"processed": 0, "failed": 0, "duplicate": 0}
    for ago in range(45, -1, -3):
        moment = now - timedelta(minutes=ago, seconds=5)
        batch = 2 + (ago * 7) % 5
        for n in range(batch):
            lines = "".join(f'{{"id": "m{ago}-{n}-{r}", "v": {r}}}\n' for r in range(50 * (n + 1)))
            drop(data_dir, f"incoming/2026/minute-{ago:02d}/part-{n}.ndjson", lines)
        outcomes["processed"] += batch
        if ago % 9 == 0:
            drop(data_dir, f"incoming/2026/minute-{ago:02d}/broken.json", '{"id": "x", "total": 12.5,}')
            outcomes["failed"] += 1
        if ago % 12 == 0:
            drop(data_dir, f"incoming/2026/minute-{ago:02d}/copy.ndjson", f'{{"id": "m{ago}-0-0", "v": 0}}\n')
            outcomes["duplicate"] += 1
        engine = LocalEngine(data_dir, settings, clock=lambda moment=moment: moment)
        try:
            engine.run_once()
        finally:
            engine.deliveries.close()
            engine.db.close()
    return outcomes


def test_the_charts_draw_an_hour_of_work(
    tmp_path: Path, receiver: Receiver, console: Callable[..., Console], browser: Any
) -> None:
    # GIVEN 45 minutes of work: NDJSON files every 3 minutes, some broken, some duplicates
    data_dir, config = tmp_path / "data", tmp_path / "dockline.toml"
    hook = f'[[local.subscriptions]]\ntype = "webhook"\nurl = "{receiver.url}"\n'
    config.write_text("[local]\nsettle_seconds = 0\n" + hook)
    data_dir.mkdir()
    settled = _an_hour_of_work(data_dir, config, datetime.now(UTC))
    served = console(data_dir, config)
    # WHEN the page shows it
    browser.get(served.url)
    # THEN the outcome chart holds every settled file in 16 minutes of the hour, by outcome
    charts = _wait(
        browser,
        "the charts",
        lambda d: d.execute_script(
            "const o = Chart.getChart('outcomes-chart'); if (!o || !o.data.labels.length) return null;"
            "const sum = (a) => a.reduce((x, y) => x + y, 0);"
            "return {sets: Object.fromEntries(o.data.datasets.map((s) => [s.label, sum(s.data)])),"
            " busy: o.data.labels.filter((_, i) => o.data.datasets.some((s) => s.data[i])).length};"
        ),
    )
    assert {k: charts["sets"][k] for k in settled} == settled
    assert charts["busy"] == 16
    # and the bars were drawn: one rectangle per busy minute and outcome
    drawn, wanted = browser.execute_script(
        "const o = Chart.getChart('outcomes-chart'); let drawn = 0, wanted = 0;"
        "o.data.datasets.forEach((s, i) => o.getDatasetMeta(i).data.forEach((bar, j) => {"
        " if (s.data[j]) { wanted++; if (Math.abs(bar.base - bar.y) >= 1) drawn++; } }));"
        "return [drawn, wanted];"
    )
    assert drawn == wanted and wanted >= 16 + 2
    _wait(browser, "the status", lambda d: _text(d, "files-processed") == str(settled["processed"]))
    # and a key that does not fit its column folds after a "/" only, never mid-name: each
    # character's line is measured, and every line but the last of a key ends in "/"
    breaks = browser.execute_script(
        "const out = [];"
        "for (const cell of document.querySelectorAll('#dead-letters td.key')) {"
        "  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT); let last = null, prev = '';"
        "  for (let node = walker.nextNode(); node; node = walker.nextNode()) {"
        "    for (let i = 0; i < node.data.length; i++) {"
        "      const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);"
        "      const top = Math.round(r.getBoundingClientRect().top);"
        "      if (last !== null && top > last) out.push(prev);"
        "      last = top; prev = node.data[i]; } } }"
        "return out;"
    )
    assert breaks, "no key needed folding: the check would prove nothing"
    assert set(breaks) == {"/"}, breaks
    _shot(browser, "console.png")
