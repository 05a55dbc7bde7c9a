"""``course grade --db postgresql://...``: the scores land in a real PostgreSQL gradebook.

The test starts a private server (tests/postgres_server.py), grades two submissions of the tiny
stage (a solution and one exercise wrong) into it through the ``course`` CLI, and reads the scores
back the two ways an instructor would: nbgrader's ``Gradebook`` API (what the formgrader uses) and
``nbgrader export``. No SQLite gradebook may appear in the course meanwhile.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import nbformat
import pytest

from course_utils.cli import main
from course_utils.grading import database
from course_utils.grading.layout import nbgrader
from tests.grading_course import (
    EX1_TEST,
    EX2_TEST,
    NOTEBOOK,
    STAGE,
    make_grading_course,
    slip_notebook,
    solution_notebook,
)
from tests.postgres_server import missing_reason, private_postgres

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason())),
]
EXPECTED = {"pg_right": {EX1_TEST: 1.0, EX2_TEST: 2.0}, "pg_slip": {EX1_TEST: 0.0, EX2_TEST: 2.0}}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("psycopg", reason="the cluster extra (psycopg) is not installed")
    base = tmp_path_factory.mktemp("postgres")
    inbox = base / "inbox"
    for student, nb in (("pg_right", solution_notebook()), ("pg_slip", slip_notebook())):
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, inbox / student / NOTEBOOK)
    course = make_grading_course(base / "course")
    with private_postgres() as url:
        code = main(["--root", str(course), "grade", str(inbox), "--jobs", "2", "--db", url])
        yield course, database.resolve(url), code


def test_the_cli_grades_into_postgres_and_leaves_no_sqlite_gradebook(graded) -> None:
    course, url, code = graded
    assert code == 0
    assert url.startswith("postgresql+psycopg://")
    assert not (course / "_grading" / "gradebook.db").exists()


def test_the_gradebook_api_reads_every_score_back(graded) -> None:
    from nbgrader.api import Gradebook

    _, url, _ = graded
    with warnings.catch_warnings(), Gradebook(url) as gradebook:
        warnings.simplefilter("ignore")
        for student, cells in EXPECTED.items():
            submission = gradebook.find_submission(STAGE, student)
            assert submission.score == sum(cells.values())
            notebook = gradebook.find_submission_notebook(STAGE, STAGE, student)
            assert {g.name: g.auto_score for g in notebook.grades} == cells


def test_nbgrader_export_lists_the_scores(graded, tmp_path: Path) -> None:
    course, url, _ = graded
    target = tmp_path / "export.csv"
    nbgrader(course, "export", f"--to={target}", f"--CourseDirectory.db_url={url}")
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    scores = {r["student_id"]: float(r["raw_score"]) for r in rows if r["assignment"] == STAGE}
    assert scores == {s: sum(c.values()) for s, c in EXPECTED.items()}
