"""What the trusted scorer reads from the notebooks: the tests to run, and the cells answers need.

Both are read here, outside any kernel, from files the scorer opened itself:

- :func:`graded_tests` reads the *source* notebook (``solutions/``, never the student's copy): each
  autograded test cell, its points, and the check calls of its hidden block
  (``_checks.check_x(answer, hidden=True, binary=True)``: check name, answer name, constant options).
- :func:`answer_slice` picks from the *student's* notebook the code cells that define the answers
  and, transitively, every earlier cell defining a name those cells use (imports, helpers,
  constants): a program slice over names, read from each cell's AST. Test cells and cells that
  define nothing needed (training runs, plots) are left out, so the answer process starts in
  seconds. Over-inclusion is harmless (a cell runs that was not needed); a name defined only in a
  skipped cell shows as a ``NameError`` in that exercise's FAIL line.
"""

from __future__ import annotations

import ast
import symtable
import threading
from dataclasses import dataclass, field
from typing import Any

import nbformat

_PARSE_LOCK = threading.Lock()  # CPython 3.11's ast.parse is not thread-safe (see audit.py)


@dataclass(frozen=True)
class CheckCall:
    """One ``check_x(answer, **options)`` call of a hidden test block."""

    check: str
    answer: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GradedTest:
    """An autograded test cell of the source notebook."""

    grade_id: str
    points: float
    calls: tuple[CheckCall, ...]


def python_source(source: str) -> str:
    """Cell text with IPython syntax (``%magic``, ``!cmd``) turned into Python, line numbers kept:
    IPython drops leading blank lines, which would shift every line a message names."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the course
        return source
    transformed = TransformerManager().transform_cell(source)
    blank = len(source) - len(source.lstrip("\n"))
    return "\n" * (blank - (len(transformed) - len(transformed.lstrip("\n")))) + transformed


def _parse(source: str) -> ast.Module | None:
    with _PARSE_LOCK:
        try:
            return ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            return None


def graded_tests(source_nb: nbformat.NotebookNode) -> list[GradedTest]:
    """The autograded test cells of a source notebook, in order, with their check calls.

    Calls with ``hidden=True`` are the ones kept when a cell has any (they run the visible cases
    too); a cell without them keeps all its ``check_*`` calls.
    """
    tests = []
    for cell in source_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        tree = _parse(cell.source)
        calls = [] if tree is None else _check_calls(tree)
        hidden = [c for c in calls if c.options.get("hidden") is True]
        tests.append(
            GradedTest(str(meta["grade_id"]), float(meta.get("points", 0)), tuple(hidden or calls))
        )
    return tests


def _check_calls(tree: ast.Module) -> list[CheckCall]:
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if not name.startswith("check_") or not node.args:
            continue
        if not isinstance(node.args[0], ast.Name):
            continue
        options = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                continue
            try:
                options[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                continue
        calls.append(CheckCall(name, node.args[0].id, options))
    return calls


# --------------------------------------------------------------------------------------------------
# The slice of the student's notebook that the answers need
# --------------------------------------------------------------------------------------------------


@dataclass
class _CellNames:
    index: int
    source: str
    defines: set[str]
    uses_now: set[str]  # read while the cell runs (module level, decorators, defaults, classes)
    uses_later: set[str]  # read inside function bodies, when the function is called


def _names(tree: ast.Module, source: str) -> tuple[set[str], set[str], set[str]]:
    """(names a cell binds at module level, names read when it runs, names its functions read as
    globals when called), from Python's own scope analysis (``symtable``): a function's locals are
    not uses of the notebook's names."""
    defines: set[str] = set()
    for node in tree.body:
        defines |= _bound_by(node)
    top = symtable.symtable(source, "<cell>", "exec")
    now = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    later: set[str] = set()
    pending = list(top.get_children())
    while pending:
        table = pending.pop()
        pending += table.get_children()
        if table.get_type() == "class":
            now |= {
                s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()
            }
        else:
            later |= set(table.get_globals())
    return defines, now, later


def _bound_by(node: ast.stmt) -> set[str]:
    names: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            names.add((alias.asname or alias.name).split(".")[0])
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.If, ast.Try)):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                names |= _bound_by(sub)
    return names


def answer_slice(
    student_nb: nbformat.NotebookNode, answers: dict[str, int], test_ids: set[str]
) -> list[tuple[int, str]]:
    """``(index, source)`` of the student's code cells the ``answers`` need, in notebook order.

    ``answers`` maps each answer name to the cell index its test runs at (the definition in force
    there is the one graded). A chosen cell pulls in, for each name it reads while running, the
    last cell before it that defines the name, and for each name its functions read, the last
    definition before that test. Cells whose grade id is a test cell's (``test_ids``) are never
    included: the student's copy of a test cell is not the test. Unparsable cells are skipped.
    """
    cells: list[_CellNames] = []
    for index, cell in enumerate(student_nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in test_ids:
            continue
        tree = _parse(cell.source)
        if tree is None:
            continue
        with _PARSE_LOCK:
            names = _names(tree, python_source(cell.source))
        cells.append(_CellNames(index, cell.source, *names))

    chosen: set[int] = set()
    wanted = [(name, at, at) for name, at in sorted(answers.items())]
    seen: set[tuple[str, int]] = set()
    while wanted:
        name, before, test_at = wanted.pop()
        if (name, before) in seen:
            continue
        seen.add((name, before))
        definer = next((c for c in reversed(cells) if c.index < before and name in c.defines), None)
        if definer is None or definer.index in chosen:
            continue
        chosen.add(definer.index)
        wanted += [(used, definer.index, test_at) for used in definer.uses_now]
        wanted += [(used, test_at, test_at) for used in definer.uses_later]
    return [(c.index, c.source) for c in cells if c.index in chosen]
