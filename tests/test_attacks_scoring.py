"""Trusted scoring against forgery: the hostile batch's ``sc*`` students (tests/attacks_scoring.py).

Their points are checked with every other student's by tests/test_grading_hostile.py; here, what
must hold for the whole class: no hidden test reaches a kernel (so none can be printed into a
notebook or its feedback), and the verdict in each test cell is the trusted grader's.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.grading.scoring.score import HEADER
from tests.attacks_scoring import HIDDEN_MARK, VARIANTS_SCORING
from tests.grading_course import NOTEBOOK, STAGE
from tests.hostile_batch import Batch

pytestmark = pytest.mark.slow


def _autograded(batch: Batch, student: str) -> Path:
    return batch.root / "_grading" / "autograded" / student / STAGE / NOTEBOOK


def _graded_students(batch: Batch) -> list[str]:
    return [g.student for g in batch.report.grades if _autograded(batch, g.student).exists()]


def test_no_hidden_test_reaches_a_kernel_or_a_feedback_page(hostile_batch: Batch) -> None:
    students = _graded_students(hostile_batch)
    assert "sc09_prints_history" in students
    for student in students:
        nb = nbformat.read(_autograded(hostile_batch, student), as_version=4)
        printed = "\n".join(
            str(output.get("text", "")) + str(output.get("data", ""))
            for cell in nb.cells
            for output in cell.get("outputs", [])
        )
        assert HIDDEN_MARK not in printed, f"{student}: a hidden test was printed"
        feedback = hostile_batch.root / "_grading" / "feedback" / student / STAGE / f"{STAGE}.html"
        if feedback.exists():
            assert HIDDEN_MARK not in feedback.read_text(), f"{student}: hidden test in feedback"


def test_the_history_printer_saw_no_test_at_all(hostile_batch: Batch) -> None:
    nb = nbformat.read(_autograded(hostile_batch, "sc09_prints_history"), as_version=4)
    printed = "\n".join(
        str(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "_ih" in printed or "print(In)" in printed, "the printing cell did not run"
    assert "check_expected_initial_loss(" not in printed.split(HEADER)[0]


@pytest.mark.parametrize("student", sorted(VARIANTS_SCORING))
def test_every_test_cell_shows_the_trusted_verdict(hostile_batch: Batch, student: str) -> None:
    nb = nbformat.read(_autograded(hostile_batch, student), as_version=4)
    tests = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert tests
    for cell in tests:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert text.startswith(HEADER), f"{student}: {text[:200]!r}"
        assert "PASS" in text or "FAIL" in text
