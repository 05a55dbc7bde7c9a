"""The inbox attacks of ``tests/attacks_inbox.py``, graded in the shared hostile batch: what the
reports, the archive and the feedback pages show for them, and a real Chromium opening every
feedback page of the batch without any payload running.

Status, points and the main problem line of each variant are checked by
``tests/test_grading_hostile.py``.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from course_utils.grading.collect import DEFAULT_MAX_NOTEBOOK_SIZE
from course_utils.grading.feedback import CSP_META, inert_html
from tests.attacks_inbox import BEACON_PORT, MARKDOWN_PAYLOADS, NODE, OUTPUT_HTML, TITLE, payload
from tests.grading_course import STAGE
from tests.hostile_batch import Batch

pytestmark = pytest.mark.slow  # needs the hostile batch

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _lines(batch: Batch, student: str) -> list[str]:
    return [p for p in batch.report.problems if p.startswith((f"{student}/", f"{student}:"))]


def _feedback_pages(batch: Batch) -> list[Path]:
    return sorted((batch.root / "_grading" / "feedback").rglob("*.html"))


# the inbox -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "student", ["in05_symlinked_folder", "in06_symlinked_notebook", "in07_zip_and_folder"]
)
def test_entries_not_to_grade_leave_nothing_graded(batch: Batch, student: str) -> None:
    assert all(g.student != student for g in batch.report.grades)
    grading = batch.root / "_grading"
    for folder in ("submitted", "autograded", "feedback", "results", "archive"):
        assert not (grading / folder / student).exists(), f"{folder}/{student}"


def test_the_zip_bomb_was_never_inflated(batch: Batch) -> None:
    assert all(g.student != "in08_zip_bomb" for g in batch.report.grades)
    big = [
        p
        for p in batch.root.rglob("*")
        if p.is_file() and p.stat().st_size > DEFAULT_MAX_NOTEBOOK_SIZE // 2
    ]
    assert big == []


def test_a_forged_file_name_forges_no_report_line_or_cell(batch: Batch) -> None:
    student = "in04_zip_link_forged_name"
    assert any(
        line.startswith(f"{student}: 'x\\n- s02_untouched: 3 of 3 | forged | <b>.ipynb' is not")
        for line in _lines(batch, student)
    ), _lines(batch, student)
    summary = (batch.root / "_grading" / "summary.md").read_text()
    problems = summary.split("## Problems\n\n", 1)[1].splitlines()
    assert all(line.startswith("- ") for line in problems), problems
    assert not any(line.startswith("- s02\\_untouched: 3 of 3") for line in problems)
    assert not any(re.search(r"(?<!\\)[<|]", line) for line in problems), problems
    rows = [line for line in summary.splitlines() if line.startswith("|")]
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 3 for line in rows), rows  # student, stage
    text = (batch.root / "_grading" / "grades.csv").read_text()
    parsed = list(csv.reader(text.splitlines()))
    assert len(parsed) == len(text.splitlines()) and all(len(row) == 8 for row in parsed)


# metadata --------------------------------------------------------------------------------------


def test_every_metadata_edit_is_named(batch: Batch) -> None:
    edited = "\n".join(_lines(batch, "in02_edited_metadata"))
    assert "(sample_log_uniform_test): its grading metadata was edited (points)" in edited
    added = "\n".join(_lines(batch, "in03_new_grade_cell"))
    assert "the notebook's kernelspec was edited; restored from the release" in added
    assert "names a lexer pygments does not know" in added
    assert batch.report.grade("in02_edited_metadata", STAGE).max_score == 3


# feedback --------------------------------------------------------------------------------------


def test_every_feedback_page_has_the_policy_and_no_hidden_test(batch: Batch) -> None:
    pages = _feedback_pages(batch)
    assert len(pages) >= len([g for g in batch.report.grades if g.stage == STAGE])
    for page in pages:
        text = page.read_text()
        head = text.split("</head>", 1)[0]
        assert CSP_META in head, page
        assert "HIDDEN TESTS" not in text and "hidden=True" not in text, page


def test_the_payloads_reached_the_feedback_as_inert_text(batch: Batch) -> None:
    text = (batch.root / "_grading" / "feedback" / "in01_xss" / STAGE / f"{STAGE}.html").read_text()
    assert "&lt;script&gt;document.title=" in text  # shown as text: the instructor sees the attempt
    assert "<script" not in text.lower()


class _Beacon(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[list[str]]:
    """A listener on the port the payloads request; yields the paths it received."""
    _Beacon.hits = []
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", BEACON_PORT), _Beacon)
    except OSError as error:
        pytest.fail(f"cannot listen on 127.0.0.1:{BEACON_PORT} for the payloads' requests: {error}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Beacon.hits
    finally:
        server.shutdown()
        server.server_close()


def _dialog(dialog, found: list[str]) -> None:
    found.append(f"dialog {dialog.message}")
    with contextlib.suppress(Exception):  # the page may be closing already
        dialog.dismiss()


def _open_all(pages: list[Path]) -> dict[str, list[str]]:
    """Open each page in headless Chromium; the traces of anything that ran, per page (event
    handlers that need a hover or a click are looked for as attributes in the live DOM)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    traces: dict[str, list[str]] = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for path in pages:
                found: list[str] = []
                page = browser.new_page()
                page.on("dialog", lambda d, found=found: _dialog(d, found))
                page.on(
                    "console",
                    lambda m, found=found: (
                        found.append(f"console {m.text}") if TITLE in m.text else 0
                    ),
                )
                page.goto(path.as_uri(), wait_until="load", timeout=60_000)
                page.wait_for_timeout(200)  # onerror/onload/ontoggle fire right after load
                if page.title() == TITLE:
                    found.append("document.title set")
                if page.locator(f"#{NODE}").count():
                    found.append("DOM node added")
                handlers = page.evaluate(
                    "() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
                    ".filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))"
                    ".map(a => e.tagName + ' ' + a.name))"
                )
                found += [f"attribute {h}" for h in handlers]
                found += [f"script element {n}" for n in range(page.locator("script").count())]
                traces[path.name if len(pages) == 1 else str(path)] = found
                page.close()
        finally:
            browser.close()
    return traces


def test_the_browser_detects_the_payloads_on_a_page_without_the_walls(
    tmp_path: Path, beacon: list[str]
) -> None:
    """The control: the same payloads on a plain page do run, so the test below can see them."""
    page = tmp_path / "raw.html"
    body = "\n".join(MARKDOWN_PAYLOADS) + OUTPUT_HTML + f"<script>{payload('raw')}</script>"
    page.write_text(
        f"<!DOCTYPE html><html><head><title>raw</title></head><body>{body}</body></html>"
    )
    traces = _open_all([page])["raw.html"]
    assert "document.title set" in traces and "DOM node added" in traces, traces
    assert any(t.startswith("dialog ") for t in traces), traces
    assert beacon, "the control page's requests did not reach the listener"


def test_the_walls_stop_the_same_payloads(tmp_path: Path, beacon: list[str]) -> None:
    raw = tmp_path / "raw.html"
    body = "\n".join(MARKDOWN_PAYLOADS) + OUTPUT_HTML + f"<script>{payload('raw')}</script>"
    raw.write_text(
        f"<!DOCTYPE html><html><head><title>raw</title></head><body>{body}</body></html>"
    )
    page = tmp_path / "inert.html"
    page.write_text(inert_html(raw.read_text()))
    assert _open_all([page]) == {"inert.html": []}
    assert beacon == []


def test_no_feedback_page_of_the_batch_runs_anything(batch: Batch, beacon: list[str]) -> None:
    pages = _feedback_pages(batch)
    traces = _open_all(pages)
    ran = {page: found for page, found in traces.items() if found}
    assert ran == {}, ran
    assert beacon == [], f"feedback pages sent requests: {beacon}"


@pytest.fixture(scope="module")
def batch(hostile_batch: Batch) -> Batch:
    return hostile_batch
