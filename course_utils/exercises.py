"""A stage notebook's graded exercises: their names, the cells their tests need, and their verdicts.

``course check`` and the lab's Validate button both report one line per exercise, named as the
notebook names it ("Exercise 2: find near-duplicates", from the heading above the exercise), and run
only the cells the tests need: every cell nbgrader knows (setup, answers, tests) plus the plain cells
that define a name one of those reads (``needed_cells``). Demonstration cells (training runs, plots)
are skipped, which is most of a stage's run time.

A verdict is read from the executed test cell: the check's PASS/FAIL lines on stdout (wrapped lines
joined back, see ``feedback_text.unwrap``), else the error the cell raised.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

import nbformat

from course_utils.feedback_text import unwrap

HEADING = re.compile(r"^#+\s*(Exercise\s+\d+)\s*(?:\([^)]*\))?\s*:?\s*(.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Exercise:
    """One autograded test cell: ``grade_id``, its ``title`` in the notebook, ``points``, cell ``index``."""

    grade_id: str
    title: str
    points: float
    index: int


@dataclass(frozen=True)
class Verdict:
    """Whether an exercise's test passed, and the reason in one line."""

    exercise: Exercise
    passed: bool
    reason: str
    cases: tuple[str, ...] = ()  # each failing case's FAIL text, when the check printed them

    @property
    def points(self) -> float:
        return self.exercise.points if self.passed else 0.0

    def line(self, max_cases: int | None = None) -> str:
        """``PASS|FAIL <title> (<points>): <reason>``; at most ``max_cases`` failing cases."""
        mark = "PASS" if self.passed else "FAIL"
        score = f"{self.points:g}/{self.exercise.points:g}"
        reason = self.reason
        if max_cases is not None and len(self.cases) > max_cases:
            more = len(self.cases) - max_cases
            shown = " | ".join(self.cases[:max_cases])
            reason = (
                f"{shown} (and {more} more failing case{'s' * (more > 1)}: the test cell shows all)"
            )
        return f"{mark} {self.exercise.title} ({score}): {reason}"


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The autograded test cells in order, each titled by the last "Exercise N" heading above it."""
    found = []
    title = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for text in cell.source.splitlines():
                match = HEADING.match(text.strip())
                if match:
                    name = match.group(2).replace("`", "").strip()
                    title = f"{match.group(1)}: {name}" if name else match.group(1)
            continue
        meta = _nbgrader(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            grade_id = meta.get("grade_id", f"cell {index}")
            found.append(Exercise(grade_id, title or grade_id, meta.get("points", 0), index))
            title = None  # a second test cell under the same heading is named by its grade id
    return found


def _python(source: str) -> ast.AST | None:
    """The cell's code as Python (IPython magics translated), or None if it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _defines(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _reads(tree: ast.AST) -> set[str]:
    """Names the cell reads that it does not define itself (so they come from an earlier cell)."""
    loaded = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    return loaded - _defines(tree) - set(dir(builtins))


def needed_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells the graded tests need, in order.

    Every cell with nbgrader metadata, then (until nothing changes) every plain code cell that
    defines a name a needed cell reads, or that cannot be analysed. Extra cells only cost time;
    a missing one shows up as a ``NameError``, and callers then run the whole notebook.
    """
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    trees = {i: _python(c.source) for i, c in code}
    needed = {i for i, c in code if _nbgrader(c) or trees[i] is None}
    changed = True
    while changed:
        changed = False
        wanted = set().union(*(_reads(trees[i]) for i in needed if trees[i] is not None))
        for i, _ in code:
            if i not in needed and _defines(trees[i]) & wanted:
                needed.add(i)
                changed = True
    return sorted(needed)


def cell_output(cell: dict) -> tuple[list[str], str | None]:
    """(stdout lines, ``"ErrorName: message"`` or None) of an executed cell."""
    lines: list[str] = []
    error = None
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            lines.extend(output.get("text", "").splitlines())
        elif output.get("output_type") == "error":
            first = ANSI.sub("", output.get("evalue", "")).strip().splitlines()
            error = f"{output.get('ename')}: {first[0] if first else ''}".rstrip(": ")
    return unwrap(lines), error


def verdict(exercise: Exercise, cell: dict) -> Verdict:
    """The verdict of ``exercise`` from its executed test ``cell``."""
    lines, error = cell_output(cell)
    fails = [line.split(":", 1)[-1].strip() for line in lines if line.startswith("FAIL")]
    if fails:
        return Verdict(exercise, False, " | ".join(fails), tuple(fails))
    if error is not None:
        if error.startswith("NameError"):
            error += " (did the answer cell above run without error?)"
        return Verdict(exercise, False, error)
    if not cell.get("outputs") and cell.get("execution_count") is None:
        return Verdict(exercise, False, "not run (an earlier cell failed or timed out)")
    passes = [line.split(":", 1)[-1].strip() for line in lines if line.startswith("PASS")]
    return Verdict(exercise, True, passes[-1] if passes else "ran without error")
