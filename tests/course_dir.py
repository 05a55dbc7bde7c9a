"""Build throwaway course directories and submissions for the grading tests."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import nbformat

from tests.planted_bugs import PLANTED_BUGS


def stages(repo: Path) -> list[str]:
    """Every stage in solutions/, or those whose number is in $COURSE_TEST_STAGES (e.g. "01 03")."""
    solutions = (repo / "solutions").iterdir()
    found = sorted(p.name for p in solutions if (p / f"{p.name}.ipynb").exists())
    only = os.environ.get("COURSE_TEST_STAGES", "").split()
    return [s for s in found if not only or s.split("_")[0] in only]


def make_course(repo: Path, target: Path) -> Path:
    """A course root with the repo's solutions and nbgrader config (and no grading state)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(repo / "nbgrader_config.py", target / "nbgrader_config.py")
    shutil.copytree(repo / "solutions", target / "solutions")
    (target / "course_utils").mkdir(exist_ok=True)  # marks the folder as a course root
    return target


def with_bug(solution: Path, stage: str) -> nbformat.NotebookNode:
    """The solution notebook with the planted bug of ``stage`` in one answer cell."""
    bug = PLANTED_BUGS[stage]
    nb = copy.deepcopy(nbformat.read(solution, as_version=4))
    hits = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == bug["answer"]]
    assert len(hits) == 1, f"{stage}: no answer cell {bug['answer']!r}"
    hits[0].source = bug["source"]
    return nb


def points(notebook: Path, grade_id: str) -> float:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == grade_id:
            return float(meta["points"])
    raise KeyError(grade_id)


def total_points(notebook: Path) -> float:
    nb = nbformat.read(notebook, as_version=4)
    return sum(
        float(c.metadata.get("nbgrader", {}).get("points", 0))
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    )
