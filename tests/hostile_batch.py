"""The hostile class, graded once per test session, shared by every module that asserts on it.

``ALL_VARIANTS`` is every :class:`tests.grading_course.Variant` of the class: the base variants of
``grading_course.VARIANTS`` plus each attack area's ``tests/attacks_*.py`` (one registry line each,
below). The session fixture ``hostile_batch`` grades them all in one ``grade(...)`` call with
``jobs=2``; tests then read the :class:`Batch`. Variants that do hostile file I/O are only graded
where the bubblewrap sandbox works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_utils.grading import sandbox
from course_utils.grading.autograde import GradeReport, grade
from tests.attacks_inbox import VARIANTS_INBOX
from tests.attacks_sandbox import VARIANTS_SANDBOX
from tests.attacks_scoring import VARIANTS_SCORING
from tests.grading_course import (
    MEMORY_LIMIT,
    VARIANTS,
    Places,
    Variant,
    make_grading_course,
    tree_digest,
    write_class,
)

REPO = Path(__file__).resolve().parents[1]
ISOLATED = sandbox.available()
CELL_TIMEOUT = (
    45  # per cell: the setup cell imports torch while two other processes of the job do too
)

ALL_VARIANTS: dict[str, Variant] = dict(VARIANTS)
# Each attack area registers its variants here, one line each.
ALL_VARIANTS.update(VARIANTS_SCORING)
ALL_VARIANTS.update(VARIANTS_INBOX)
ALL_VARIANTS.update(VARIANTS_SANDBOX)


@dataclass
class Batch:
    root: Path
    submissions: Path
    places: Places
    students: list[str]
    report: GradeReport
    seconds: float
    digests_before: dict[str, str]
    digests_after: dict[str, str]
    preexisting: list[Path]  # write targets that existed before grading (they should not)
    created: list[Path]  # write targets that exist after grading and did not before


def _watched(root: Path, submissions: Path) -> dict[str, Path]:
    return {
        "the course's solutions/": root / "solutions",
        "the repository's solutions/": REPO / "solutions",
        "the submissions folder": submissions,
    }


@pytest.fixture(scope="session")
def hostile_batch(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("hostile")
    root = make_grading_course(base / "course")
    submissions = base / "submissions"
    places = Places(root=root, repo=REPO, submissions=submissions, home=Path.home())
    # Without the sandbox the hostile I/O would really hit the repo and the home folder: not run.
    students = [s for s, v in ALL_VARIANTS.items() if ISOLATED or not v.sandbox]
    write_class(submissions, places, students, ALL_VARIANTS)
    watched = _watched(root, submissions)
    before = {name: tree_digest(path) for name, path in watched.items()}
    targets = places.write_targets()
    preexisting = [p for p in targets if p.exists()]
    created: list[Path] = []
    try:
        start = time.perf_counter()
        report = grade(
            root, submissions, jobs=2, cell_timeout=CELL_TIMEOUT, memory_limit=MEMORY_LIMIT
        )
        seconds = time.perf_counter() - start
        after = {name: tree_digest(path) for name, path in watched.items()}
        created = [p for p in targets if p.exists() and p not in preexisting]
        print(f"\ngraded {len(students)} submissions in {seconds:.1f} s")
        yield Batch(
            root,
            submissions,
            places,
            students,
            report,
            seconds,
            before,
            after,
            preexisting,
            created,
        )
    finally:  # a failed sandbox must not leave files in the repo or the home folder
        for path in targets:
            if path not in preexisting:
                path.unlink(missing_ok=True)
