"""The course's Validate: nbgrader's reply format, checksums as nbgrader checks them, one line each."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import lab_validate


def _copy(repo_root: Path, tmp_path: Path, stage: str = "01_data") -> Path:
    folder = tmp_path / stage
    shutil.copytree(repo_root / "notebooks" / stage, folder)
    return folder / f"{stage}.ipynb"


def test_an_edited_locked_cell_is_reported_as_nbgrader_does_without_running(
    repo_root: Path, tmp_path: Path
) -> None:
    path = _copy(repo_root, tmp_path)
    nb = nbformat.read(path, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") is True)
    test.source = "pass  # the test, deleted"
    nbformat.write(nb, path)
    assert lab_validate.validate(path) == {"changed": [{"source": "pass  # the test, deleted"}]}


def test_the_summary_wraps_inside_the_dialog_and_escapes_html() -> None:
    html = lab_validate._summary_html(["FAIL Exercise 1: f (0/2): got <tensor>"])
    assert "white-space: pre-wrap" in html and "&lt;tensor&gt;" in html


@pytest.mark.slow
def test_the_released_notebook_gives_one_line_per_exercise(repo_root: Path, tmp_path: Path) -> None:
    path = _copy(repo_root, tmp_path)
    reply = asyncio.run(lab_validate.validate_in_subprocess(path))
    assert reply["success"], reply
    (failed,) = reply["value"]["failed"]
    assert failed["source"].startswith("01_data.ipynb: 0 of 3 exercises pass")
    lines = failed["raw_error"].splitlines()
    assert [line.split(" (")[0] for line in lines[:3]] == [
        "FAIL Exercise 1: find exact duplicates",
        "FAIL Exercise 2: find near-duplicates",
        "FAIL Exercise 3: rank the labels by how suspicious they are",
    ]
    assert all("not implemented yet" in line for line in lines[:3])
    assert lines[3].startswith("(ran the 7 cells the tests need")
