"""A real browser: JupyterLab opens a stage notebook, runs its first cells, and shows nbgrader.

Needs Chromium (Debian's `chromium`, found at /usr/bin/chromium or $CHROMIUM) and the `playwright`
package; skipped with a message otherwise. Saves a screenshot to $COURSE_SCREENSHOT_DIR (default: the
test's temporary folder) and prints its path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.lab_server import lab_server

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.slow
@pytest.mark.browser
def test_stage_notebook_opens_runs_and_shows_nbgrader(repo_root: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    shots = Path(os.environ.get("COURSE_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    stage = "01_data"
    notebook = repo_root / "notebooks" / stage / f"{stage}.ipynb"
    original = (
        notebook.read_bytes()
    )  # JupyterLab autosaves what it runs; the release must not change
    try:
        shot = _open_run_and_screenshot(repo_root, tmp_path, stage, shots, playwright)
    finally:
        notebook.write_bytes(original)
        shutil.rmtree(notebook.parent / ".ipynb_checkpoints", ignore_errors=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def _open_run_and_screenshot(repo_root: Path, tmp_path: Path, stage: str, shots: Path, playwright):
    with lab_server(repo_root, tmp_path / "runtime") as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/lab/tree/notebooks/{stage}/{stage}.ipynb", timeout=90_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        # Wait for the kernel to be up (a cold first start of torch can take minutes on a busy CI box).
        page.wait_for_selector("text=| Idle", timeout=300_000)
        # Run the first two cells: the title and the setup cell (imports, data).
        page.click(".jp-Notebook .jp-Cell >> nth=0")
        for _ in range(2):
            page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
            ".some(e => /\\[\\d+\\]/.test(e.textContent))",
            timeout=300_000,
        )
        toolbar = page.locator(".jp-NotebookPanel-toolbar").inner_text()
        assert "Validate" in toolbar, f"no nbgrader Validate button in the toolbar: {toolbar!r}"
        page.click("text=Nbgrader")
        assert page.locator("text=Assignment List").count() > 0
        page.keyboard.press("Escape")
        shot = shots / f"lab_{stage}.png"
        page.screenshot(path=str(shot))
        browser.close()
    return shot
