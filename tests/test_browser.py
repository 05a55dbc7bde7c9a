"""A learner's session in a real browser: JupyterLab in headless Chromium, started by `course lab`.

One session on stage 03 (the first with progress bars), on a copy of the released notebook with three
exercises answered and the focal loss answered wrongly:

- no Jupyter news toast (the project's JupyterLab settings turn it off);
- a training cell's progress bars survive save, kernel shutdown and reopen: no "Error displaying
  widget", the bars' last state is text in the saved file;
- the wrong focal loss: its test cell fails (an error output, so nbgrader scores it 0), each FAIL line
  shows once, no traceback, no frame from course_utils, no line wider than the checks' width;
- Validate: one line per exercise, PASS or FAIL with the reason, each inside the dialog (no sideways
  scrolling); the nbgrader menu is there.

Needs Chromium (Debian's `chromium`, at /usr/bin/chromium or $CHROMIUM) and the `playwright` package;
skipped with the reason otherwise. Saves a screenshot to $COURSE_SCREENSHOT_DIR (default: the test's
temporary folder) and prints its path.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from course_utils.checks._report import WIDTH, unwrap
from course_utils.exercises import exercises
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
STAGE = "03_overfit"
COPY = (
    "browser-session.ipynb"  # next to the stage notebook (same folder, same files), removed after
)
SOLVED = ("residual_block", "group_norm", "lstm_forget_bias")  # answered from solutions/: PASS
WRONG_FOCAL = (  # plain BCE: forgets alpha and the (1 - p_t)^gamma factor
    "def focal_loss(logits, targets, alpha=0.25, gamma=2.0):\n"
    "    return F.binary_cross_entropy_with_logits(logits, targets, reduction='none')\n"
)
TRAINING_CELL = "lr_histories = {"  # section 2: four bars, one per learning rate
BAR_TEXT = "lr 0.0003: 100%"  # what the third bar leaves behind


def _session_notebook(repo_root: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(repo_root / "notebooks" / STAGE / f"{STAGE}.ipynb", as_version=4)
    solution = nbformat.read(repo_root / "solutions" / STAGE / f"{STAGE}.ipynb", as_version=4)
    answers = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in solution.cells}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in SOLVED:
            cell.source = answers[grade_id]
        elif grade_id == "focal_loss":
            cell.source = WRONG_FOCAL
    return nb


def _index(nb: nbformat.NotebookNode, needle: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if needle in c.source)


@pytest.mark.slow
@pytest.mark.browser
def test_a_learner_session_in_jupyterlab(repo_root: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    shots = Path(os.environ.get("COURSE_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    folder = repo_root / "notebooks" / STAGE
    nb = _session_notebook(repo_root)
    path = folder / COPY
    nbformat.write(nb, path)
    env = {
        "COURSE_RESULTS_DIR": str(tmp_path / "results"),  # "Save the results" cells write there
        "COURSE_DATASET": "digits",  # 8x8 images: the training cell runs in seconds, bars and all
    }
    try:
        with (
            lab_server(repo_root, tmp_path / "runtime", env=env) as base,
            playwright.sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                _session(page, base, nb, path, shots)
            finally:
                browser.close()
    finally:
        path.unlink(missing_ok=True)
        shutil.rmtree(folder / ".ipynb_checkpoints", ignore_errors=True)


def _open(page, base: str) -> None:
    page.goto(f"{base}/lab/tree/notebooks/{STAGE}/{COPY}", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # The kernel is up (a cold first start of torch can take minutes on a busy CI box).
    page.wait_for_selector("text=| Idle", timeout=300_000)


def _run_cell(page, index: int) -> None:
    """Select cell ``index`` (command mode), run it in place and wait for its execution count."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + 300
    while not any(ch.isdigit() for ch in prompt.inner_text()):
        assert time.monotonic() < deadline, f"cell {index} did not finish"
        time.sleep(0.5)


def _session(page, base: str, nb: nbformat.NotebookNode, path: Path, shots: Path) -> None:
    _open(page, base)
    training = _index(nb, TRAINING_CELL)
    answer, test = _index(nb, "def focal_loss("), _index(nb, "check_focal_loss(focal_loss)")
    first_section = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## 1."))
    setup = [i for i, c in enumerate(nb.cells[:first_section]) if c.cell_type == "code"]
    for index in (*setup, training, answer, test):  # setup and helpers, section 2, the exercise
        _run_cell(page, index)

    # The wrong answer: FAIL lines once, no traceback, nothing wider than the checks' width.
    output = page.locator(".jp-Notebook .jp-Cell").nth(test).locator(".jp-OutputArea")
    shown = output.inner_text()
    assert "focal_loss failed: see the" in shown, shown  # the error that fails the cell, one line
    assert "Traceback" not in shown and "course_utils/" not in shown and ".py" not in shown, shown
    lines = shown.splitlines()
    fails = [line for line in unwrap(lines) if line.startswith("FAIL")]
    assert len(fails) >= 2, shown
    flat = " ".join(shown.split())
    for fail in fails:
        assert flat.count(" ".join(fail.split())) == 1, fail
    assert all(len(line) <= WIDTH for line in lines if line.startswith(("FAIL", "    "))), shown
    overflow = output.evaluate(
        "o => [...o.querySelectorAll('pre')].some(p => p.scrollWidth > p.clientWidth + 1)"
    )
    assert not overflow, "an output line runs past the edge"

    # Save, shut the kernel down, reopen: the bars are text, no widget is missing.
    page.locator(".jp-Notebook .jp-Cell").nth(training).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    saved = _wait_saved(path, training, test)
    assert BAR_TEXT in saved and "widget-view+json" not in saved, saved[:2000]
    _shutdown_kernels(base)
    page.reload()
    _open(page, base)
    page.wait_for_selector(f"text={BAR_TEXT}", timeout=60_000)
    time.sleep(3)  # let the widget manager restore and every renderer settle
    assert page.locator("text=Error displaying widget").count() == 0
    assert page.locator(".jp-Notebook .jupyter-widgets").count() == 0

    # Validate: one line per exercise, each fully inside the dialog.
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    assert "Validate" in toolbar.inner_text()
    toolbar.locator("text=Validate").click()
    dialog = page.locator(".jp-Dialog-content")
    dialog.locator("text=Validation Results").wait_for(timeout=300_000)
    rows = dialog.locator(".course-verdict")
    texts = [" ".join(t.split()) for t in rows.all_inner_texts()]
    titles = [e.title for e in exercises(nb)]
    assert len(texts) == len(titles) + 1, texts  # one per exercise, then how the run went
    for title, text in zip(titles, texts, strict=False):
        assert text.startswith(("PASS " + title, "FAIL " + title)), (title, text)
    verdicts = dict(zip(titles, texts, strict=False))
    focal = next(t for t in titles if "focal" in t)
    assert verdicts[focal].startswith("FAIL") and len(verdicts[focal]) > len(focal) + 20
    assert all(v.startswith("PASS") for t, v in verdicts.items() if t != focal), verdicts
    outside = dialog.evaluate(
        """d => { const box = d.getBoundingClientRect();
                  return [...d.querySelectorAll('.course-verdict')].filter(r => {
                    const b = r.getBoundingClientRect();
                    return r.scrollWidth > r.clientWidth + 1 || b.right > box.right + 1; }).length; }"""
    )
    assert outside == 0, "a verdict line runs past the dialog's edge"
    assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth + 1"), "the dialog scrolls sideways"
    shot = shots / f"lab_{STAGE}_validate.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    page.keyboard.press("Escape")

    page.click("text=Nbgrader")
    assert page.locator("text=Assignment List").count() > 0
    page.keyboard.press("Escape")
    # No news toast at any point of the session (JupyterLab asks on first start by default).
    assert page.locator(".Toastify__toast").count() == 0
    assert page.locator("text=Jupyter news").count() == 0


def _wait_saved(path: Path, index: int, last: int, timeout: float = 60) -> str:
    """The saved outputs of cell ``index`` once the file on disk has those of cell ``last`` (the
    last one run: an autosave from before it finished does not count)."""
    deadline = time.monotonic() + timeout
    while True:
        cells = nbformat.read(path, as_version=4).cells
        if cells[last].get("outputs"):
            return json.dumps(cells[index].outputs)
        assert time.monotonic() < deadline, "the notebook was not saved"
        time.sleep(0.5)


def _shutdown_kernels(base: str) -> None:
    """End every kernel session, as closing JupyterLab and coming back later does."""
    with urllib.request.urlopen(f"{base}/api/sessions", timeout=10) as response:
        sessions = json.loads(response.read())
    for session in sessions:
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()
