"""Real-browser test of the operators' app: headless Chromium (Debian) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from growth import cli
from growth.store import Store

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = REPO_ROOT / "data" / "artifacts" / "app_screenshot.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


BUSY_MS = 180_000
"""Deadlines, not waits: a loaded 2-core machine can take minutes to train the app's model
and solve; a healthy run passes in well under a minute."""


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Poll Streamlit's health endpoint until it answers 'ok' (or the server dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout_s} s")


@pytest.fixture
def app_server(tmp_path):
    """``streamlit run app/Home.py`` on a free loopback port with a tmp SQLite store."""
    port = cli.free_port()
    db_url = f"sqlite:///{tmp_path / 'browser.db'}"
    env = {
        **os.environ,
        "GROWTH_DB_URL": db_url,
        "GROWTH_APP_SCENARIO": "small",
        "GROWTH_APP_USERS": "1500",
        "OMP_NUM_THREADS": "1",
    }
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        cli.app_command(port), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, db_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_browser_sets_budget_solves_and_screenshots(app_server, tmp_path):
    """In Chromium an operator sets a budget, solves, sees the plan and saves it as a run."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    url, db_url = app_server
    shot = tmp_path / "app_screenshot.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{url}/Install_control", timeout=BUSY_MS)
            budget = page.get_by_label("Daily budget")
            budget.wait_for(timeout=BUSY_MS)
            budget.fill("3000")
            budget.press("Enter")
            page.get_by_role("button", name="Solve", exact=True).click()
            heading = page.get_by_text("Plan: maximise retained with budget 3,000")
            heading.wait_for(timeout=BUSY_MS)
            page.get_by_label("Operator name").fill("browser-operator")
            page.get_by_role("button", name="Save as run").click()
            page.get_by_text("Saved as run").wait_for(timeout=BUSY_MS)
            heading.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)
    runs = Store(db_url).runs()
    assert runs.loc[0, "operator"] == "browser-operator"
    assert runs.loc[0, "kind"] == "install"
    summary = Store(db_url).get_run(int(runs.loc[0, "run_id"]))["summary"]
    assert summary["totals"]["spend"] == pytest.approx(3000.0, rel=1e-3)
