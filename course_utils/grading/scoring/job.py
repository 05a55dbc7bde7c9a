"""Trusted scoring inside one grading job (``nbgrader_job.py``): start, score, record.

The job calls :func:`start` before nbgrader runs the notebook (the answer process loads while the
kernel works), then :func:`finish` after autograde: score, write the points into the workspace's
gradebook, replace each test cell's outputs in the autograded notebook by the trusted verdict, and
save the sheet as ``trusted_scores.json`` for the worker. Feedback is generated afterwards, so it
shows these scores and lines.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import nbformat
from nbformat.v4 import new_output

from course_utils.grading.scoring.remote import AnswerProcess, AnswerProcessError
from course_utils.grading.scoring.score import HEADER, ScoreSheet, answer_process, score_submission

SHEET = "trusted_scores.json"
ANSWER_SANDBOX = "answer_sandbox.json"  # the sandbox command prefix the worker chose (a JSON list)


class Pending:
    """An answer process loading the student's cells while the notebook runs.

    The process is spawned here, in the calling thread: ``bwrap --die-with-parent`` ends the sandbox
    when the *thread* that started it ends, so only the loading runs in the background thread.
    """

    def __init__(self, process: AnswerProcess) -> None:
        self.process = process
        self.error: Exception | None = None
        try:
            process.spawn()
        except AnswerProcessError as error:
            self.error = error
            self.thread = None
            return
        self.thread = threading.Thread(target=self._load, daemon=True)
        self.thread.start()

    def _load(self) -> None:
        try:
            self.process.load_cells()
        except Exception as error:  # noqa: BLE001 - handled in wait(), in the main thread
            self.error = error

    def wait(self) -> AnswerProcess:
        """The loaded process; a cell that failed to load is skipped and the rest loaded again."""
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            self.process.note_failure(self.error)
            self.error = None
            try:
                self.process.start()
            except AnswerProcessError as error:
                self.error = error
        return self.process


def start(
    workspace: Path, stage: str, student: str, *, isolate: bool, cell_timeout: float
) -> Pending:
    """Start the answer process for ``student``'s ``stage``: sandboxed when ``isolate``, by the
    command prefix the worker wrote to ``ANSWER_SANDBOX`` (the kernel's walls and cgroups)."""
    source = workspace / "solutions" / stage / f"{stage}.ipynb"
    submitted = workspace / "_grading" / "submitted" / student / stage / f"{stage}.ipynb"
    scratch = workspace / "answers"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg")
    prefix: list[str] = []
    if isolate:
        written = workspace / ANSWER_SANDBOX
        if not written.exists():
            raise RuntimeError(f"isolation asked for, but {written} is missing")
        prefix = [str(a) for a in json.loads(written.read_text())]
    process = answer_process(
        source,
        submitted,
        argv_prefix=prefix,
        env=env,
        cwd=str(scratch),
        cell_timeout=cell_timeout,
        call_timeout=cell_timeout,
    )
    return Pending(process)


def finish(
    workspace: Path, stage: str, student: str, pending: Pending, course_id: str
) -> ScoreSheet:
    """Score, record in the gradebook and the autograded notebook, save the sheet; returns it."""
    process = pending.wait()
    source = workspace / "solutions" / stage / f"{stage}.ipynb"
    submitted = workspace / "_grading" / "submitted" / student / stage / f"{stage}.ipynb"
    try:
        sheet = score_submission(source, submitted, process=process)
    finally:
        process.close()
    if pending.error is not None and not sheet.notes:
        sheet.notes.append(f"your answers could not be loaded: {pending.error}")
    _record_in_gradebook(workspace, stage, student, sheet, course_id)
    autograded = workspace / "_grading" / "autograded" / student / stage / f"{stage}.ipynb"
    if autograded.exists():
        _rewrite_test_outputs(autograded, sheet)
    (workspace / SHEET).write_text(sheet.to_json())
    return sheet


def _record_in_gradebook(
    workspace: Path, stage: str, student: str, sheet: ScoreSheet, course_id: str
) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    db_url = f"sqlite:///{workspace / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, course_id=course_id) as gradebook:
        for test in sheet.tests:
            try:
                grade = gradebook.find_grade(test.grade_id, stage, stage, student)
            except MissingEntry:
                continue
            grade.auto_score = test.score
            gradebook.db.commit()


def _rewrite_test_outputs(autograded: Path, sheet: ScoreSheet) -> None:
    """Each test cell's outputs become the trusted verdict (what the kernel printed is dropped)."""
    nb = nbformat.read(autograded, as_version=4)
    by_id = {t.grade_id: t for t in sheet.tests}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        test = by_id.get(grade_id)
        if cell.cell_type != "code" or test is None:
            continue
        text = "\n".join([HEADER, *test.lines]) + "\n"
        cell.outputs = [new_output("stream", name="stdout", text=text)]
        if test.score < test.points:
            cell.outputs.append(
                new_output(
                    "error",
                    ename="TestFailed",
                    evalue=f"{test.score:g} of {test.points:g} points",
                    traceback=[f"TestFailed: {test.score:g} of {test.points:g} points"],
                )
            )
    nbformat.write(nb, autograded)
