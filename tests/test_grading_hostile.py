"""`course grade` against a class of hostile and clumsy submissions, on a tiny one-stage course.

One batch grades every variant of tests/grading_course.py (crashing kernels, infinite loops, huge
output, a memory hog, warnings, edited/deleted/duplicated cells, a renamed file, tampering, reading
the solutions, writing outside) with ``grade(root, subs, jobs=2, cell_timeout=20, memory_limit=2
GiB)``; the tests then check each student's per-test points, status and problem lines, and that
nothing outside the grading folder changed or leaked. Variants doing hostile file I/O are only
graded where the bubblewrap sandbox works (``sandbox.available()``); CI runs as root with
bubblewrap installed, so there they run.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.grading.autograde import GradeReport, grade
from tests.grading_course import (
    FULL,
    LEAKED,
    NOTEBOOK,
    STAGE,
    Places,
    build,
    make_grading_course,
    write_submission,
)
from tests.hostile_batch import ALL_VARIANTS, CELL_TIMEOUT, ISOLATED, Batch

pytestmark = pytest.mark.slow  # runs nbgrader on ~20 notebooks (about two minutes on 2 cores)

REPO = Path(__file__).resolve().parents[1]
NO_SANDBOX = (
    "the bubblewrap sandbox is not usable here (course_utils.grading.sandbox.available() is False), "
    "so the variants that read or write outside their folder are not graded; CI (root, bubblewrap "
    "installed) runs them"
)
MAX_FEEDBACK_BYTES = 3_000_000


@pytest.fixture(scope="module")
def batch(hostile_batch: Batch) -> Batch:
    return hostile_batch


def _lines(report: GradeReport, student: str) -> list[str]:
    return [p for p in report.problems if p.startswith((f"{student}/", f"{student}:"))]


def _needs(student: str) -> None:
    if ALL_VARIANTS[student].sandbox and not ISOLATED:
        pytest.skip(NO_SANDBOX)


def _autograded(root: Path, student: str) -> Path:
    return root / "_grading" / "autograded" / student / STAGE / NOTEBOOK


def _feedback(root: Path, student: str) -> Path:
    return root / "_grading" / "feedback" / student / STAGE / f"{STAGE}.html"


def _printed(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def _files_of(root: Path, student: str) -> list[Path]:
    """Every file under ``_grading`` kept for ``student`` (submitted, autograded, feedback, archive,
    workspace)."""
    grading = root / "_grading"
    return [
        p
        for p in grading.rglob("*")
        if p.is_file()
        and any(
            part == student or part.startswith(f"{student}--")
            for part in p.relative_to(grading).parts
        )
    ]


GRADED = [s for s, v in ALL_VARIANTS.items() if v.cells is not None]
WITH_PROBLEM = [s for s, v in ALL_VARIANTS.items() if v.problem or v.clean or v.status != "graded"]


def test_the_batch_completes_with_a_result_for_every_student(batch: Batch) -> None:
    graded = {(g.student, g.stage) for g in batch.report.grades}
    for student in batch.students:
        if ALL_VARIANTS[student].cells is None:
            assert _lines(batch.report, student), f"{student}: neither a grade nor a problem line"
        else:
            assert (student, STAGE) in graded, (
                f"{student}: no grade; problems: {batch.report.problems}"
            )
    assert all(g.status != "error" for g in batch.report.grades), [
        (g.student, g.notes) for g in batch.report.grades if g.status == "error"
    ]
    assert batch.report.csv is not None and batch.report.csv.is_file()
    text = batch.report.csv.read_text()
    for student in GRADED:
        if student in batch.students:
            assert student in text, f"{student} missing from {batch.report.csv}"


@pytest.mark.parametrize("student", GRADED)
def test_points_per_test_cell_and_status(batch: Batch, student: str) -> None:
    _needs(student)
    variant = ALL_VARIANTS[student]
    result = batch.report.grade(student, STAGE)
    context = f"{student} ({variant.note}): notes {result.notes}"
    assert result.cells == variant.cells, context
    assert result.score == pytest.approx(variant.score), context
    assert batch.report.score(student, STAGE) == pytest.approx(variant.score)
    assert result.max_score == pytest.approx(sum(FULL.values())), context
    assert result.status == variant.status, context


@pytest.mark.parametrize("student", WITH_PROBLEM)
def test_problem_lines(batch: Batch, student: str) -> None:
    _needs(student)
    variant = ALL_VARIANTS[student]
    lines = _lines(batch.report, student)
    if variant.clean:
        assert lines == [], f"{student} ({variant.note}) should have no problem lines"
    if variant.status not in (None, "graded"):
        assert lines, f"{student}: status {variant.status!r} without a problem line"
    if variant.problem:
        assert any(re.search(variant.problem, line) for line in lines), (
            f"{student} ({variant.note}): no problem line matches {variant.problem!r}: {lines}"
        )


def test_every_problem_line_names_its_student(batch: Batch) -> None:
    lines = batch.report.problems
    if not ISOLATED:  # grade() says once, without a student, that nothing was isolated
        lines = [line for line in lines if "isolat" not in line]
    pattern = re.compile(rf"^({'|'.join(map(re.escape, batch.students))})(/{STAGE})?: ")
    assert all(pattern.match(line) for line in lines), lines


def test_huge_output_is_truncated(batch: Batch) -> None:
    for path in (
        _autograded(batch.root, "s08_huge_output"),
        _feedback(batch.root, "s08_huge_output"),
    ):
        assert path.is_file(), path
        assert path.stat().st_size < MAX_FEEDBACK_BYTES, f"{path}: {path.stat().st_size} bytes"


def test_nothing_outside_the_grading_folder_changed(batch: Batch) -> None:
    for name, digest in batch.digests_before.items():
        assert batch.digests_after[name] == digest, f"grading changed {name}"


def test_student_code_reads_nothing_secret(batch: Batch) -> None:
    _needs("s18_read_secrets")
    printed = _printed(_autograded(batch.root, "s18_read_secrets"))
    for path in [*batch.places.read_targets(), batch.root]:
        assert f"{path}" in printed, f"the hostile cell did not run (no line for {path}): {printed}"
    for file in _files_of(batch.root, "s18_read_secrets"):
        assert LEAKED.encode() not in file.read_bytes(), f"{file}: {printed}"


def test_student_code_writes_nothing_outside_its_folder(batch: Batch) -> None:
    _needs("s19_write_outside")
    assert not batch.preexisting, f"left by an earlier run, remove them first: {batch.preexisting}"
    printed = _printed(_autograded(batch.root, "s19_write_outside"))
    for path in batch.places.write_targets():
        assert f"{path}" in printed, f"the hostile cell did not run (no line for {path}): {printed}"
    # Printing WROTE: about the sandbox's own throw-away filesystem is harmless; the real files
    # must not exist.
    assert not batch.created, f"student code created {batch.created}; it printed: {printed}"


def test_the_solution_alone_grades_the_same(batch: Batch, tmp_path: Path) -> None:
    """Grading s01_solution in a fresh course, alone, gives the cells it got in the big batch."""
    root = make_grading_course(tmp_path / "course")
    submissions = tmp_path / "submissions"
    places = Places(root=root, repo=REPO, submissions=submissions, home=Path.home())
    write_submission(submissions, "s01_solution", build("s01_solution", places))
    alone = grade(root, submissions, cell_timeout=CELL_TIMEOUT)
    assert (
        alone.grade("s01_solution", STAGE).cells == batch.report.grade("s01_solution", STAGE).cells
    )
    assert alone.grade("s01_solution", STAGE).cells == FULL
    assert alone.grade("s01_solution", STAGE).status == "graded"
