"""Where grading results are kept, so that re-running ``course grade`` is cheap and loses nothing.

Under ``_grading/``:

* ``results/<student>/<stage>.json``: the latest result (score, per-test points, status, notes, the
  submission's SHA-256 and the grading key) with every earlier result of that stage in ``history``;
* ``archive/<student>/<stage>/<time>-<sha>/``: the submitted and autograded notebooks, the feedback
  and nbgrader's log of every grading, never overwritten;
* ``autograded/`` and ``feedback/``: the latest copies in nbgrader's layout, and ``gradebook.db``, the
  course gradebook, so the formgrader shows them as if ``nbgrader autograde`` had made them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from course_utils.grading.collect import Submission
from course_utils.grading.database import course_url
from course_utils.grading.feedback import CSP_META
from course_utils.grading.worker import COURSE_ID, Outcome


def result_path(root: Path, student: str, stage: str) -> Path:
    return root / "_grading" / "results" / student / f"{stage}.json"


def load_result(root: Path, student: str, stage: str) -> dict[str, Any] | None:
    path = result_path(root, student, stage)
    return json.loads(path.read_text()) if path.exists() else None


def all_results(root: Path) -> list[dict[str, Any]]:
    """Every latest result under ``_grading/results``, sorted by stage then student."""
    folder = root / "_grading" / "results"
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]
    return sorted(results, key=lambda r: (r["stage"], r["student"]))


def record(
    root: Path, submission: Submission, outcome: Outcome, key: str, db_url: str | None = None
) -> dict[str, Any]:
    """Archive ``outcome``, make it the latest result, and merge it into the course gradebook
    (``db_url``; default ``_grading/gradebook.db``)."""
    now = dt.datetime.now(dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    student, stage = outcome.student, outcome.stage
    grading = root / "_grading"
    archive = grading / "archive" / student / stage / f"{stamp}-{submission.sha256[:12]}"
    archive.mkdir(parents=True)
    shutil.copyfile(submission.notebook, archive / "submitted.ipynb")
    (archive / "nbgrader.log").write_text(outcome.log)
    for source, name, latest in (
        (outcome.autograded, "autograded.ipynb", grading / "autograded"),
        (outcome.feedback, "feedback.html", grading / "feedback"),
    ):
        target = latest / student / stage
        if target.exists():
            shutil.rmtree(target)
        if source is not None and source.exists():
            shutil.copyfile(source, archive / name)
            target.mkdir(parents=True)
            shutil.copyfile(source, target / source.name)
    if outcome.feedback is None:
        target = grading / "feedback" / student / stage
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{stage}.html").write_text(_plain_feedback(outcome))

    result = {
        "student": student,
        "stage": stage,
        "score": outcome.score,
        "max_score": outcome.max_score,
        "cells": outcome.cells,
        "status": outcome.status,
        "notes": outcome.notes,
        "sha256": submission.sha256,
        "key": key,
        "graded_at": now.isoformat(timespec="seconds"),
        "seconds": round(outcome.seconds, 2),
        "archive": str(archive.relative_to(root)),
    }
    (archive / "result.json").write_text(json.dumps(result, indent=1))
    previous = load_result(root, student, stage)
    history = []
    if previous is not None:
        history = previous.pop("history", []) + [previous]
    path = result_path(root, student, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "history": history}, indent=1))
    merge_into_gradebook(root, outcome, db_url)
    return result


def _plain_feedback(outcome: Outcome) -> str:
    from html import escape

    notes = "".join(f"<li>{escape(n)}</li>" for n in outcome.notes)
    return (
        f"<html><head>{CSP_META}</head><body><h1>{escape(outcome.stage)}: {outcome.score:g} / {outcome.max_score:g}</h1>"
        f"<p>Status: {escape(outcome.status)}</p><ul>{notes}</ul></body></html>"
    )


def merge_into_gradebook(root: Path, outcome: Outcome, db_url: str | None = None) -> None:
    """Set ``outcome``'s scores as its student's grades for its stage in ``_grading/gradebook.db``
    (or the gradebook at ``db_url``: ``database.py``).

    The course gradebook must already know the stage (``nbgrader generate_assignment``). A tampered
    submission's notebook is flagged and its tests marked as needing a manual grade.
    """
    db_url = course_url(root, db_url)
    with warnings.catch_warnings(), Gradebook(db_url, course_id=COURSE_ID) as gradebook:
        # nbgrader's add_submission trips SQLAlchemy's autoflush warning (upstream, harmless)
        warnings.simplefilter("ignore", SAWarning)
        gradebook.update_or_create_student(outcome.student)
        now = dt.datetime.now(dt.timezone.utc)
        try:
            submission = gradebook.find_submission(outcome.stage, outcome.student)
            submission.timestamp = now
        except MissingEntry:
            submission = gradebook.add_submission(outcome.stage, outcome.student, timestamp=now)
        review = outcome.status in ("tampered", "flagged")
        for notebook in submission.notebooks:
            notebook.flagged = review
            for grade in notebook.grades:
                if grade.name in outcome.cells:
                    grade.auto_score = outcome.cells[grade.name]
                    grade.needs_manual_grade = review
        gradebook.db.commit()
