"""The notebooks: they run, the release matches its source, and nbgrader grades them right."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.grading.autograde import grade
from course_utils.grading.release import release
from tests.course_dir import make_course, points, stages, total_points, with_bug
from tests.planted_bugs import PLANTED_BUGS

REPO = Path(__file__).resolve().parents[1]
STAGES = stages(REPO)
BUDGET_GUARD_S = 300  # per cell: a hang guard; the 120 s budget is measured by benchmarks/


def _notebooks(folder: str) -> list[Path]:
    return sorted((REPO / folder).glob("*/*.ipynb"))


def test_every_stage_has_a_release_and_nothing_else_is_released() -> None:
    assert STAGES, "no stage notebooks in solutions/"
    released = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir())
    assert set(STAGES) <= set(released)
    if not os.environ.get("COURSE_TEST_STAGES"):
        assert released == STAGES


@pytest.mark.parametrize(
    "path",
    _notebooks("solutions") + _notebooks("notebooks"),
    ids=lambda p: f"{p.parent.parent.name}/{p.name}",
)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_release_regenerates_without_a_diff(tmp_path: Path) -> None:
    course = make_course(REPO, tmp_path / "course")
    release(course, release_dir=tmp_path / "release")
    for stage in STAGES:
        fresh = (tmp_path / "release" / stage / f"{stage}.ipynb").read_bytes()
        committed = (REPO / "notebooks" / stage / f"{stage}.ipynb").read_bytes()
        assert fresh == committed, f"notebooks/{stage} is stale: run `make release` and commit"


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_solution_notebook_runs_top_to_bottom(stage: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    path = REPO / "solutions" / stage / f"{stage}.ipynb"
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=BUDGET_GUARD_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    print(f"{stage}: {time.perf_counter() - start:.1f} s")  # speed is benchmarks/' business
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                assert output.get("name") != "stderr", f"graded cell wrote to stderr: {output}"
    assert (tmp_path / "results" / "mnist_5k" / f"{stage}.json").is_file()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory):
    """One class of three students grading every stage: the solution, the release, one bug each."""
    base = tmp_path_factory.mktemp("grading")
    course = make_course(REPO, base / "course")
    submissions = base / "submissions"
    for stage in STAGES:
        solution = REPO / "solutions" / stage / f"{stage}.ipynb"
        for student, nb in (
            ("solution", nbformat.read(solution, as_version=4)),
            ("untouched", nbformat.read(REPO / "notebooks" / stage / f"{stage}.ipynb", 4)),
            ("one_bug", with_bug(solution, stage) if stage in PLANTED_BUGS else None),
        ):
            if nb is not None:
                target = submissions / student / stage
                target.mkdir(parents=True)
                nbformat.write(nb, target / f"{stage}.ipynb")
    return course, grade(course, submissions, jobs=2)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_autograde_gives_full_marks_zero_and_exactly_the_lost_points(stage, graded_class) -> None:
    course, report = graded_class
    solution = REPO / "solutions" / stage / f"{stage}.ipynb"
    full = total_points(solution)
    assert full > 0
    assert report.score("solution", stage) == full
    assert report.score("untouched", stage) == 0
    assert stage in PLANTED_BUGS, f"add a planted bug for {stage} to tests/planted_bugs.py"
    bug = PLANTED_BUGS[stage]
    assert report.score("one_bug", stage) == full - points(solution, bug["test"])
    for student in ("solution", "one_bug"):  # a failing hidden test's traceback hides them too
        feedback = course / "_grading" / "feedback" / student / stage / f"{stage}.html"
        text = feedback.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text, student


@pytest.mark.slow
def test_grades_csv_lists_every_student(graded_class) -> None:
    course, report = graded_class
    text = report.csv.read_text()
    for student in ("solution", "untouched", "one_bug"):
        assert f",{student}," in text
