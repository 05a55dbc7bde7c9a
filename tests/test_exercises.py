"""A stage's exercises are named as the notebook names them; the quick run keeps what tests need."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from course_utils.exercises import Exercise, exercises, needed_cells, verdict
from course_utils.notebook_check import run_exercises
from tests.planted_bugs import PLANTED_BUGS

STAGES = sorted(p.name for p in (Path(__file__).parents[1] / "solutions").iterdir() if p.is_dir())


def _notebook(repo_root: Path, stage: str, kind: str = "notebooks") -> nbformat.NotebookNode:
    return nbformat.read(repo_root / kind / stage / f"{stage}.ipynb", as_version=4)


def test_exercises_are_titled_by_their_heading(repo_root: Path) -> None:
    found = exercises(_notebook(repo_root, "01_data"))
    assert [e.title for e in found] == [
        "Exercise 1: find exact duplicates",
        "Exercise 2: find near-duplicates",
        "Exercise 3: rank the labels by how suspicious they are",
    ]
    assert [e.grade_id for e in found] == [
        "find_exact_duplicates_test",
        "find_near_duplicates_test",
        "rank_label_errors_test",
    ]
    assert all(e.points == 2 for e in found)


@pytest.mark.parametrize("stage", STAGES)
def test_every_exercise_has_a_title_and_its_cells_are_needed(repo_root: Path, stage: str) -> None:
    nb = _notebook(repo_root, stage)
    needed = needed_cells(nb)
    for exercise in exercises(nb):
        assert exercise.title.startswith("Exercise "), exercise
        assert exercise.index in needed and exercise.index - 1 in needed  # test and answer
    plain = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in needed]
    assert plain, "the quick run should skip some demonstration cells"


def test_a_plain_cell_is_needed_when_it_defines_a_name_an_answer_reads() -> None:
    nb = nbformat.v4.new_notebook()
    answer = {"nbgrader": {"grade_id": "f", "solution": True, "grade": False}}
    test = {"nbgrader": {"grade_id": "f_test", "solution": False, "grade": True, "points": 1}}
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nSCALE = 2"),
        nbformat.v4.new_code_cell("history = train()  # a long demonstration"),
        nbformat.v4.new_code_cell("def f(x):\n    y = x * SCALE\n    return y", metadata=answer),
        nbformat.v4.new_code_cell("assert f(1) == 2", metadata=test),
    ]
    assert needed_cells(nb) == [0, 2, 3]


def _exercise() -> Exercise:
    return Exercise("f_test", "Exercise 1: f", 2, 0)


def _cell(*outputs: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell("", outputs=list(outputs), execution_count=1)


def test_verdicts_read_pass_wrapped_fail_and_errors() -> None:
    stream = nbformat.v4.new_output
    ok = verdict(_exercise(), _cell(stream("stream", name="stdout", text="PASS f: 12 cases\n")))
    assert ok.passed and ok.line() == "PASS Exercise 1: f (2/2): 12 cases"
    text = "FAIL f: case a: expected\n    1, got 2\n"
    bad = verdict(_exercise(), _cell(stream("stream", name="stdout", text=text)))
    assert not bad.passed and bad.line() == "FAIL Exercise 1: f (0/2): case a: expected 1, got 2"
    error = stream("error", ename="NameError", evalue="name 'f' is not defined", traceback=[])
    assert "did the answer cell above run" in verdict(_exercise(), _cell(error)).reason


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_the_quick_run_finds_the_planted_bug_and_passes_the_rest(
    repo_root: Path, stage: str, tmp_path: Path
) -> None:
    nb = _notebook(repo_root, stage, "solutions")
    bug = PLANTED_BUGS[stage]
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == bug["answer"]:
            cell.source = bug["source"]
    path = tmp_path / f"{stage}.ipynb"
    nbformat.write(nb, path)
    run = run_exercises(path)
    assert not run.full, "the quick run needed the whole notebook"
    failed = {v.exercise.grade_id for v in run.verdicts if not v.passed}
    assert failed == {bug["test"]}, [v.line() for v in run.verdicts]


def test_a_verdict_line_can_name_only_the_first_failing_cases() -> None:
    stream = nbformat.v4.new_output
    text = "FAIL f: case a: 1 != 2\nFAIL f: case b: 3 != 4\nFAIL f: case c: 5 != 6\n"
    bad = verdict(_exercise(), _cell(stream("stream", name="stdout", text=text)))
    assert bad.line().endswith("case a: 1 != 2 | case b: 3 != 4 | case c: 5 != 6")
    assert bad.line(max_cases=1).endswith(
        "case a: 1 != 2 (and 2 more failing cases: the test cell shows all)"
    )
