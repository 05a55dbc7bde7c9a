"""``course check NN [path]``: run a learner's notebook and say, per graded exercise, PASS or FAIL.

The notebook runs top to bottom in a fresh kernel (errors do not stop it, so every exercise is tried),
with ``NBGRADER_EXECUTION=validate`` so training cells shrink as under grading. For each autograded test
cell the verdict is the ``PASS``/``FAIL`` lines the check printed, or the error the cell raised.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_utils.grading.layout import graded_cells

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class ExerciseVerdict:
    grade_id: str
    points: float
    passed: bool
    reason: str

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        score = f"{self.points if self.passed else 0:g}/{self.points:g}"
        return f"{mark} {self.grade_id} ({score}): {self.reason}"


def _cell_text(cell: dict) -> tuple[list[str], str | None]:
    """(stdout lines, error text or None) of an executed cell."""
    lines: list[str] = []
    error = None
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            lines.extend(output.get("text", "").splitlines())
        elif output.get("output_type") == "error":
            value = ANSI.sub("", output.get("evalue", ""))
            error = f"{output.get('ename')}: {value}"
    return lines, error


def verdicts(executed: nbformat.NotebookNode, cells: list[dict]) -> list[ExerciseVerdict]:
    """One verdict per graded cell of an executed notebook."""
    result = []
    for info in cells:
        cell = executed.cells[info["index"]]
        lines, error = _cell_text(cell)
        fails = [line for line in lines if line.startswith("FAIL")]
        passes = [line for line in lines if line.startswith("PASS")]
        if error is None and not fails:
            reason = passes[-1].split(":", 1)[-1].strip() if passes else "ran without error"
            result.append(ExerciseVerdict(info["grade_id"], info["points"], True, reason))
            continue
        if fails:
            reason = " | ".join(f.split(":", 1)[-1].strip() for f in fails)
        elif error and error.startswith("NameError"):
            reason = f"{error} (did the answer cell above run without error?)"
        else:
            reason = error or "failed"
        result.append(ExerciseVerdict(info["grade_id"], info["points"], False, reason))
    return result


def check_notebook(path: Path, timeout: int = 300) -> list[ExerciseVerdict]:
    """Execute the notebook at ``path`` in its own folder and return a verdict per graded exercise."""
    nb = nbformat.read(path, as_version=4)
    cells = graded_cells(path)
    previous = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "validate"
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = previous
    return verdicts(nb, cells)
