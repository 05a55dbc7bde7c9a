"""``course grade`` on a class: --jobs 2 gives the grades of --jobs 1, re-runs resume, nothing is lost.

A synthetic class of 9 submissions of the tiny stage (tests/grading_course.py): a third each right,
one exercise wrong, and untouched stubs. It is graded from scratch with ``jobs=1`` and, in a second
course folder, with ``jobs=2``; then the ``jobs=2`` course is graded again (nothing changed: all
kept), and once more after two students resubmit.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.grading.autograde import grade
from tests.grading_course import (
    NOTEBOOK,
    STAGE,
    make_grading_course,
    release_like,
    slip_notebook,
    solution_notebook,
)

pytestmark = pytest.mark.slow
CLASS_SIZE = 9
SERIAL_SIZE = 3


def _class(folder: Path) -> dict[str, float]:
    """Write the class; returns each student's expected score."""
    kinds = [
        (solution_notebook(), 3.0),
        (slip_notebook(), 2.0),
        (release_like(solution_notebook()), 0.0),
    ]
    expected = {}
    for i in range(CLASS_SIZE):
        nb, score = kinds[i % 3]
        student = f"st{i:02d}"
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / NOTEBOOK)
        expected[student] = score
    return expected


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("batch")
    subs = base / "subs"
    expected = _class(subs)
    # jobs=1 on the first SERIAL_SIZE students (every kind once) is the oracle for jobs=2 on the
    # whole class: grading the class twice would cost minutes of CI for no more evidence.
    serial_subs = base / "serial_subs"
    for student in sorted(expected)[:SERIAL_SIZE]:
        shutil.copytree(subs / student, serial_subs / student)
    serial_course = make_grading_course(base / "serial")
    parallel_course = make_grading_course(base / "parallel")
    serial = grade(serial_course, serial_subs, jobs=1)
    parallel = grade(parallel_course, subs, jobs=2)
    return base, subs, expected, serial_course, serial, parallel_course, parallel


def _grades(report) -> dict:
    return {(g.student, g.stage): (g.score, g.cells, g.status) for g in report.grades}


def test_every_student_gets_the_expected_score(graded) -> None:
    _, _, expected, _, serial, _, parallel = graded
    assert {g.student: g.score for g in parallel.grades} == expected
    assert all(g.status == "graded" and not g.notes for g in parallel.grades)


def test_two_jobs_give_exactly_the_grades_of_one(graded) -> None:
    _, _, expected, _, serial, _, parallel = graded
    assert len(parallel.grades) == CLASS_SIZE == len(expected)
    assert len(serial.grades) == SERIAL_SIZE
    in_both = {key: value for key, value in _grades(parallel).items() if key in _grades(serial)}
    assert in_both == _grades(serial)


def test_the_merged_gradebook_and_csv_hold_every_student(graded) -> None:
    from nbgrader.api import Gradebook

    _, _, expected, _, _, course, parallel = graded
    with Gradebook(f"sqlite:///{course / '_grading' / 'gradebook.db'}", "the-recipe") as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions(STAGE)}
    assert scores == expected
    rows = list(csv.DictReader(parallel.csv.open()))
    assert {r["student_id"]: float(r["score"]) for r in rows} == expected
    for student in expected:
        feedback = course / "_grading" / "feedback" / student / STAGE / f"{STAGE}.html"
        assert feedback.exists()
        assert "BEGIN HIDDEN TESTS" not in feedback.read_text()


def test_rerun_keeps_unchanged_results_and_regrades_changed_ones(graded) -> None:
    _, subs, expected, _, _, course, parallel = graded
    again = grade(course, subs, jobs=2)
    assert all(g.resumed for g in again.grades)
    assert _grades(again) == _grades(parallel)

    nbformat.write(solution_notebook(), subs / "st02" / NOTEBOOK)  # was untouched: now right
    nbformat.write(slip_notebook(), subs / "st00" / NOTEBOOK)  # was right: now one slip
    gone = subs / f"st{CLASS_SIZE - 1:02d}"
    for path in gone.iterdir():
        path.unlink()
    gone.rmdir()  # dropped out of the batch: their earlier result stays
    third = grade(course, subs, jobs=2)
    changed = {g.student: g for g in third.grades if not g.resumed}
    assert sorted(changed) == ["st00", "st02"]
    assert changed["st02"].score == 3.0 and changed["st00"].score == 2.0

    history = json.loads((course / "_grading" / "results" / "st00" / f"{STAGE}.json").read_text())
    assert [h["score"] for h in history["history"]] == [3.0]
    archives = list((course / "_grading" / "archive" / "st00" / STAGE).iterdir())
    assert len(archives) == 2
    assert all(
        (a / "submitted.ipynb").exists() and (a / "feedback.html").exists() for a in archives
    )
    rows = {r["student_id"]: r for r in csv.DictReader(third.csv.open())}
    assert len(rows) == CLASS_SIZE and rows[gone.name]["score"] == f"{expected[gone.name]:g}"


def test_force_regrades_everything(graded, tmp_path: Path) -> None:
    _, subs, _, course, serial, _, _ = graded
    small = tmp_path / "small"
    (small / "st00").mkdir(parents=True)
    nbformat.write(solution_notebook(), small / "st00" / NOTEBOOK)
    kept = grade(course, small)
    assert [g.resumed for g in kept.grades] == [True]
    forced = grade(course, small, force=True)
    assert [g.resumed for g in forced.grades] == [False]
    assert forced.score("st00", STAGE) == serial.score("st00", STAGE)


def test_bad_arguments_say_what_was_expected(tmp_path: Path) -> None:
    course = make_grading_course(tmp_path / "course")
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        grade(course, tmp_path, jobs=0)
    with pytest.raises(ValueError, match="isolation must be one of"):
        grade(course, tmp_path, isolation="maybe")
    with pytest.raises(ValueError, match="memory_limit is in bytes"):
        grade(course, tmp_path, memory_limit=4)


def test_course_grade_rejects_a_memory_limit_it_cannot_read(tmp_path: Path, capsys) -> None:
    from course_utils.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["grade", str(tmp_path), "--memory-limit", "lots"])
    assert stopped.value.code == 2
    assert "a memory limit is a size like 4G, 512M or 1.5GiB" in capsys.readouterr().err


def test_course_grade_command_prints_grades_problems_and_where_the_files_are(
    tmp_path: Path, capsys
) -> None:
    from course_utils.cli import main

    course = make_grading_course(tmp_path / "course")
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    nbformat.write(solution_notebook(), subs / "ann" / NOTEBOOK)
    (subs / "ben").mkdir()
    nbformat.write(solution_notebook(), subs / "ben" / f"{STAGE}-Copy1.ipynb")
    code = main(["--root", str(course), "grade", str(subs), "--jobs", "2", "--cell-timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"ann                  {STAGE}          3/3" in out
    assert f"note: ben: {STAGE}-Copy1.ipynb is not a stage notebook; rename it to {NOTEBOOK}" in out
    assert f"grades: {course / '_grading' / 'grades.csv'}" in out
    assert "summary: " in out and "feedback: " in out


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def test_a_notebook_over_the_time_limit_is_stopped_and_an_unreadable_one_reported(
    tmp_path: Path,
) -> None:
    import time

    course = make_grading_course(tmp_path / "course")
    subs = tmp_path / "subs"
    (subs / "slow").mkdir(parents=True)
    nbformat.write(solution_notebook(), subs / "slow" / NOTEBOOK)
    (subs / "junk").mkdir()
    (subs / "junk" / NOTEBOOK).write_text("{ this is not a notebook")
    report = grade(course, subs, notebook_timeout=3)
    slow, junk = report.grade("slow", STAGE), report.grade("junk", STAGE)
    assert (slow.status, slow.score) == ("timed out", 0.0)
    assert "longer than 3 s" in slow.notes[0]
    assert (junk.status, junk.score) == ("error", 0.0)
    assert "could not be read as a notebook" in junk.notes[0]
    assert any(p.startswith("slow/00_tiny: timed out") for p in report.problems)
    deadline = time.time() + 10  # the kernel goes with nbgrader (bwrap --die-with-parent)
    while _processes_mentioning(str(course / "_grading" / "work")) and time.time() < deadline:
        time.sleep(0.5)
    assert _processes_mentioning(str(course / "_grading" / "work")) == []
    rerun = grade(course, subs, notebook_timeout=600)  # errors and time-outs are never kept
    assert rerun.grade("slow", STAGE).status == "graded" and not rerun.grade("slow", STAGE).resumed
