"""Trusted scoring: the points of a submission, decided outside the student's process.

:func:`score_submission` reads the tests from the source notebook, starts a fresh answer process
(``answers.py``, sandboxed when grading isolates) holding the cells of the student's notebook that
define the answers (``cells.answer_slice``), and runs each hidden test's checks *here*, in the
grader's process, against stand-ins that call the student's functions over the channel
(``remote.py``). A test cell scores its points when every check it calls passes, else 0. Nothing
the student's code prints, patches or registers can reach this process: its only influence is
what its functions return, which is what the checks judge.

On top of the checks' own guards, an answer that reaches a banned reference through a name bound
elsewhere in the notebook (``gn = F.group_norm`` in another cell, a default argument) fails here,
found in the cells' text (:func:`aliased_references`).
"""

from __future__ import annotations

import ast
import contextlib
import io
import time
from pathlib import Path
from typing import Any

import nbformat

from course_utils.grading.scoring.cells import GradedTest, answer_slice, graded_tests, python_source
from course_utils.grading.scoring.remote import AnswerProcess, AnswerProcessError
from course_utils.grading.scoring.sheet import HEADER, ScoreSheet, TestScore

__all__ = ["HEADER", "ScoreSheet", "TestScore", "answer_process", "score_submission"]


def score_submission(
    source: Path,
    submission: Path,
    *,
    argv_prefix: list[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    cell_timeout: float = 120.0,
    process: AnswerProcess | None = None,
) -> ScoreSheet:
    """Score ``submission`` (a student's notebook) on the tests of ``source`` (see module doc).

    ``argv_prefix`` wraps the answer process (the sandbox); ``process`` may be one already started
    (:func:`answer_process`), so the caller can start it while the notebook runs.
    """
    start = time.perf_counter()
    tests = graded_tests(nbformat.read(source, as_version=4))
    student_nb = nbformat.read(submission, as_version=4)
    own = process is None
    if process is None:
        process = answer_process(
            tests, student_nb, argv_prefix=argv_prefix, env=env, cwd=cwd, cell_timeout=cell_timeout
        )
    sheet = ScoreSheet()
    try:
        try:
            if process.process is None:
                process.start()
        except AnswerProcessError as error:
            sheet.notes.append(f"your answers could not be loaded: {error}; every test scored 0")
            sheet.tests = [TestScore(t.grade_id, t.points, 0.0, [str(error)]) for t in tests]
            return sheet
        for index, reason in process.load_errors:
            sheet.notes.append(f"cell {index} failed while loading your answers: {reason}")
        for test in tests:
            sheet.tests.append(_run_test(process, test, sheet.notes))
        released = _release_sources(source)
        for name in sorted({c.answer for t in tests for c in t.calls}):
            lookups = dynamic_lookups(process.cells, name, released)
            if lookups:
                sheet.flagged = True
                sheet.notes.append(
                    f"{name} is defined next to code the grader cannot read statically "
                    f"({'; '.join(lookups)}): scored, and flagged for manual review"
                )
        if process.restarts:
            sheet.notes.append(
                f"the process running your answers was restarted {process.restarts} time(s) "
                "(an answer crashed or hung)"
            )
    finally:
        if own:
            process.close()
        sheet.seconds = time.perf_counter() - start
    return sheet


def answer_process(
    tests: list[GradedTest] | Path,
    student_nb: nbformat.NotebookNode | Path,
    **options: Any,
) -> AnswerProcess:
    """An (unstarted) :class:`AnswerProcess` for the answers ``tests`` need from ``student_nb``."""
    if isinstance(tests, Path):
        tests = graded_tests(nbformat.read(tests, as_version=4))
    if isinstance(student_nb, Path):
        student_nb = nbformat.read(student_nb, as_version=4)
    test_ids = {t.grade_id for t in tests}
    positions = {
        cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"): index
        for index, cell in enumerate(student_nb.cells)
    }
    answers: dict[str, int] = {}
    for test in tests:
        at = positions.get(test.grade_id, len(student_nb.cells))
        for call in test.calls:
            answers[call.answer] = max(answers.get(call.answer, 0), at)
    cells = answer_slice(student_nb, answers, test_ids)
    return AnswerProcess(cells, **options)


def _run_test(process: AnswerProcess, test: GradedTest, notes: list[str]) -> TestScore:
    import course_utils.checks as checks

    lines: list[str] = []
    passed = bool(test.calls)
    if not test.calls:
        lines.append(f"FAIL {test.grade_id}: the source test cell calls no check (grader setup)")
    for call in test.calls:
        process.reset()
        check = getattr(checks, call.check, None)
        if check is None:
            lines.append(f"FAIL {call.check}: no such check in course_utils.checks")
            passed = False
            continue
        kind = process.names.get(call.answer, ["callable"])[0]
        learner = process.klass(call.answer) if kind == "class" else process.function(call.answer)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                result = check(learner, **call.options)
            ok = bool(result.passed)
            lines += list(result.lines) or printed.getvalue().splitlines()
        except Exception as error:  # noqa: BLE001 - a check that breaks scores 0, named
            ok = False
            lines.append(f"FAIL {call.check}: the check stopped: {type(error).__name__}: {error}")
        if process.broken:
            notes.append(f"{test.grade_id}: {process.broken.removeprefix('an earlier call ')}")
        if ok:
            found = aliased_references(process.cells, call.answer, process.banned_seen)
            if found:
                ok = False
                lines.append(
                    f"FAIL {call.check}: your answer calls {', '.join(found)}, which it should "
                    "implement itself (through a name bound outside the answer)"
                )
        passed = passed and ok
    return TestScore(test.grade_id, test.points, test.points if passed else 0.0, lines)


# --------------------------------------------------------------------------------------------------
# References reached through names bound elsewhere
# --------------------------------------------------------------------------------------------------


def aliased_references(
    cells: list[tuple[int, str]], answer: str, banned: set[str] | list[str]
) -> list[str]:
    """Banned dotted names the definition of ``answer`` reaches in ``cells``' text.

    Resolves imports (``import torch.nn.functional as F``, ``from torch.nn.functional import
    group_norm as g``), module-level aliases (``gn = F.group_norm``, ``h = gn``) and
    ``getattr(F, "group_norm")`` with a constant name, then looks at what the ``def``/``class`` of
    ``answer`` calls, its default values and its base classes.
    """
    banned = set(banned)
    if not banned:
        return []
    aliases: dict[str, str] = {}
    definition: ast.AST | None = None
    for _, source in cells:
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            _record_aliases(node, aliases)
            is_definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if is_definition and node.name == answer:
                definition = node
    if definition is None:
        return []
    found = []
    for node in _reaching(definition):
        dotted = _resolve(node, aliases)
        if dotted in banned and dotted not in found:
            found.append(dotted)
    return found


def _reaching(definition: ast.AST) -> list[ast.AST]:
    """What a definition may run: called expressions, default values, base classes."""
    nodes: list[ast.AST] = []
    for node in ast.walk(definition):
        if isinstance(node, ast.Call):
            nodes.append(node.func)
        elif isinstance(node, ast.arguments):
            nodes += [d for d in [*node.defaults, *node.kw_defaults] if d is not None]
        elif isinstance(node, ast.ClassDef):
            nodes += node.bases
    return nodes


def _record_aliases(node: ast.stmt, aliases: dict[str, str]) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                aliases[root] = root
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        for alias in node.names:
            aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    elif isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        dotted = _resolve(node.value, aliases)
        if isinstance(target, ast.Name) and dotted:
            aliases[target.id] = dotted


def _resolve(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The dotted name an expression stands for, through ``aliases``; None if not a name."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        base = _resolve(node.args[0], aliases)
        return f"{base}.{node.args[1].value}" if base else None
    return None


# --------------------------------------------------------------------------------------------------
# Code the alias scan cannot follow
# --------------------------------------------------------------------------------------------------

_DYNAMIC_CALLS = {"getattr", "vars", "globals", "locals", "__import__", "eval", "exec", "compile"}
_DYNAMIC_ATTRS = {"__dict__", "__getattribute__", "__globals__", "__builtins__", "attrgetter"}


def _release_sources(source: Path) -> set[str]:
    """Sources of the source notebook's read-only cells: the course's own code, not the student's."""
    nb = nbformat.read(source, as_version=4)
    kept = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("locked") and not meta.get("grade"):
            kept.add(cell.source.strip())
    return kept


def dynamic_lookups(cells: list[tuple[int, str]], answer: str, course_cells: set[str]) -> list[str]:
    """Where the student's cells that ``answer`` needs look names up by computed strings.

    ``getattr(obj, name)`` with a name that is not a constant, ``vars()``/``globals()``,
    ``__dict__``, ``__import__``, ``eval``/``exec``: a reference reached that way is invisible to
    :func:`aliased_references` (and a hostile notebook controls its own process's tripwires), so
    the submission is flagged for a person to read. Cells identical to the course's read-only cells
    are not the student's and are skipped.
    """
    found = []
    for index, source in cells:
        if source.strip() in course_cells:
            continue
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            what = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                constant_attr = (
                    name == "getattr"
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                )
                if name in _DYNAMIC_CALLS and not constant_attr:
                    what = f"{name}(...)"
            elif isinstance(node, ast.Attribute) and node.attr in _DYNAMIC_ATTRS:
                what = f".{node.attr}"
            if what:
                found.append(f"cell {index}, line {getattr(node, 'lineno', 0)}: {what}")
    return found[:5]
