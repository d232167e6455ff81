"""End to end in a real browser: ``nuggy ui`` on a loopback port, headless Chromium uploads a
photo and waits for the cut-out; a screenshot goes to ``$NUGGY_SCREENSHOT`` (or the test's
temporary folder).

Needs selenium (PyPI) and Chromium + chromedriver (Debian: ``apt-get install chromium
chromium-driver``; ``NUGGY_CHROMIUM`` / ``NUGGY_CHROMEDRIVER`` point elsewhere). Skipped, with
the reason, where any is missing. Selenium Manager is never asked to download anything: both
paths are given explicitly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import EXAMPLES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("u2netp_path")]


def _which(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if Path(os.environ[env]).is_file() else None
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def browser_tools() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium not installed (pip install selenium)")
    pytest.importorskip("streamlit", reason="streamlit not installed (pip install 'nuggy[ui]')")
    chromium = _which("NUGGY_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    driver = _which("NUGGY_CHROMEDRIVER", "chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "headless browser test needs Chromium and chromedriver "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """``nuggy ui --preset fast`` on a free loopback port (one for the module's tests); yields
    its URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("ui") / "streamlit.log"
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nuggy", "ui", "--port", str(port), "--preset", "fast"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail("nuggy ui exited early:\n" + log_path.read_text())
            if time.monotonic() > deadline:
                pytest.fail("nuggy ui did not come up within 90 s:\n" + log_path.read_text())
            time.sleep(0.3)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the group this test started: nuggy + streamlit
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_upload_in_chromium_shows_the_cutout(browser_tools, ui_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(browser_tools, tmp_path, height=1500)
    shot = Path(os.environ.get("NUGGY_SCREENSHOT") or tmp_path / "nuggy-ui.png")
    try:
        driver.get(ui_server)
        wait = WebDriverWait(driver, 120)
        upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
        upload.send_keys(str((EXAMPLES / "chelsea.jpg").resolve()))
        # The caption under the slider appears once the cut-out is made.
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "chelsea.jpg — 451×300"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')) >= 2)
        wait.until(
            lambda d: all(
                d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", im)
                for im in d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
            )
        )
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert "Download PNG" in driver.find_element(By.TAG_NAME, "body").text
        # The before/after slider: both layers decoded, and dragging it moves the split.
        frame = driver.find_element(By.CSS_SELECTOR, "iframe")
        driver.switch_to.frame(frame)
        wait.until(
            lambda d: d.execute_script(
                "return [...document.images].length == 2 && "
                "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
        )
        driver.execute_script(
            "const s = document.querySelector('input[type=range]'); s.value = 30;"
            "s.dispatchEvent(new Event('input'));"
        )
        pos = driver.execute_script("return document.getElementById('cmp').style.getPropertyValue('--pos')")
        assert pos == "30%"
        driver.execute_script(
            "const s = document.querySelector('input[type=range]'); s.value = 50;"
            "s.dispatchEvent(new Event('input'));"
        )
        driver.switch_to.default_content()
        time.sleep(0.5)  # let the last images paint
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    finally:
        driver.quit()
    assert shot.stat().st_size > 10_000


def test_one_stroke_in_chromium_changes_the_cutout(browser_tools, ui_server, tmp_path):
    """Issue 14: open "Fix with hints", paint one drop stroke across the cat's head with the
    mouse (real pointer events on the canvas), and the alpha shown changes."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium(browser_tools, tmp_path, height=1800)

    from selenium.common.exceptions import StaleElementReferenceException

    def alpha_src(d):
        imgs = d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
        return imgs[0].get_attribute("src") if imgs else None

    canvas_css = "canvas[data-testid=nuggy-hint-canvas]"

    def painted_canvas(d):  # found anew each time: Streamlit re-renders the component
        found = d.find_elements(By.CSS_SELECTOR, canvas_css)
        if not found or not found[0].is_displayed():
            return False
        ok = d.execute_script(
            "const c = arguments[0]; return c.getContext('2d').getImageData(c.width/2, c.height/2, 1, 1).data[3] > 0",
            found[0],
        )
        return found[0] if ok else False

    try:
        driver.get(ui_server)
        # a page re-render can replace an element between finding and using it: look again
        wait = WebDriverWait(driver, 180, ignored_exceptions=(StaleElementReferenceException,))
        upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
        upload.send_keys(str((EXAMPLES / "chelsea.jpg").resolve()))
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "chelsea.jpg — 451×300"))
        wait.until(lambda d: alpha_src(d))
        before = alpha_src(driver)
        wait.until(
            EC.element_to_be_clickable((By.XPATH, "//label[.//*[contains(text(), 'Fix with hints')]]"))
        ).click()
        wait.until(
            EC.element_to_be_clickable(
                (By.XPATH, "//label[.//*[contains(text(), 'Drop (paint background)')]]")
            )
        ).click()
        for attempt in range(3):  # the stroke is painted on the canvas as it is now
            try:
                canvas = wait.until(painted_canvas)
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
                canvas = wait.until(painted_canvas)
                # canvas geometry: the cat's head is around (330, 130) of 451×300
                rect = driver.execute_script(
                    "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", canvas
                )
                sx, sy = rect[0] / 451, rect[1] / 300
                ActionChains(driver).move_to_element_with_offset(
                    canvas, int((260 - 225) * sx), int((100 - 150) * sy)
                ).click_and_hold().move_by_offset(int(60 * sx), 0).move_by_offset(
                    int(60 * sx), int(20 * sy)
                ).release().perform()
                break
            except StaleElementReferenceException:
                if attempt == 2:
                    raise
        wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), "1 stroke"))
        wait.until(lambda d: alpha_src(d) and alpha_src(d) != before)
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Download hint image" in body and "--hints chelsea.hints.png" in body
        shot = Path(os.environ.get("NUGGY_SCREENSHOT_HINTS") or tmp_path / "nuggy-hints.png")
        driver.save_screenshot(str(shot))
    except Exception:
        driver.save_screenshot(str(tmp_path / "failed.png"))
        print("page text at failure:\n" + driver.find_element(By.TAG_NAME, "body").text)
        print(f"screenshot: {tmp_path / 'failed.png'}")
        raise
    finally:
        driver.quit()


def _chromium(browser_tools, tmp_path, *, height: int):
    """Headless Chromium through chromedriver, offline, with its own profile in ``tmp_path``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_tools
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--window-size=1400,{height}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach out
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
