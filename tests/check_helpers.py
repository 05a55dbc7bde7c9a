"""What every ``tests/test_checks_*.py`` uses: run a check on an answer and assert PASS or FAIL with a hint.

A check prints one ``PASS`` line, or ``FAIL`` lines (``CheckResult.lines``); nothing may reach stderr.

- ``run_check(capsys, check, answer, **kw) -> (result, text)``: run it, assert stdout holds exactly its lines.
- ``assert_passes`` / ``assert_fails(capsys, check, answer, *fragments, **kw)``: run and assert.
- ``assert_passed`` / ``assert_failed(result, capsys, *fragments)``: for a check already called.
- ``assert_pass_lines`` / ``assert_fail_lines(result, *fragments)``: on the result's lines only.
- ``not_implemented``: the stub a released exercise starts from; the FAIL fragments several checks share.
- ``from_cell(source, name)``: the function ``name`` as a notebook cell ``source`` defines it (its own
  globals, its helpers and imports beside it, its source readable by ``inspect``).
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable
from typing import Any

import pytest

from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.checks._report import CheckResult

# Fragments of FAIL lines that several checks print.
DEVICE_HINT = "without device="
DEVICE_HINT_START = WRONG_DEVICE_HINT[:40]
NOT_IMPLEMENTED = "not implemented yet"
DETACHED = "not connected to the input by autograd"
GRADIENT = "the values are right but the gradient is not"
IN_PLACE = "changes its input in place"
REPLACED = "replaced by new tensors"
NOT_RETURNED = "should return the module it was given"


def run_check(
    capsys: pytest.CaptureFixture[str],
    check: Callable[..., CheckResult],
    answer: Any,
    hidden: bool = False,
    **kw: Any,
) -> tuple[CheckResult, str]:
    """Run ``check`` on ``answer``; return (result, its printed lines) after asserting stderr stayed empty."""
    result = check(answer, hidden=hidden, **kw)
    return result, _printed(result, capsys)


def _printed(result: CheckResult, capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == result.lines, out
    return "\n".join(result.lines)


def assert_pass_lines(result: CheckResult) -> None:
    """One ``PASS`` line, and ``require()`` does not raise."""
    assert result.passed, "\n".join(result.lines)
    assert len(result.lines) == 1 and result.lines[0].startswith(f"PASS {result.name}:"), (
        result.lines
    )
    result.require()


def assert_fail_lines(result: CheckResult, *fragments: str) -> str:
    """Only ``FAIL`` lines, each fragment somewhere in them, and ``require()`` raises; returns the text."""
    text = "\n".join(result.lines)
    assert not result.passed, text
    assert result.lines and all(line.startswith(f"FAIL {result.name}:") for line in result.lines), (
        text
    )
    for fragment in fragments:
        assert fragment in text, text
    with pytest.raises(AssertionError, match="FAIL"):
        result.require()
    return text


def assert_passes(
    capsys: pytest.CaptureFixture[str],
    check: Callable[..., CheckResult],
    answer: Any,
    hidden: bool = False,
    **kw: Any,
) -> CheckResult:
    result, _ = run_check(capsys, check, answer, hidden, **kw)
    assert_pass_lines(result)
    return result


def assert_fails(
    capsys: pytest.CaptureFixture[str],
    check: Callable[..., CheckResult],
    answer: Any,
    *fragments: str,
    hidden: bool = False,
    **kw: Any,
) -> str:
    result, _ = run_check(capsys, check, answer, hidden, **kw)
    return assert_fail_lines(result, *fragments)


def assert_passed(result: CheckResult, capsys: pytest.CaptureFixture[str]) -> None:
    _printed(result, capsys)
    assert_pass_lines(result)


def assert_failed(result: CheckResult, capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    _printed(result, capsys)
    return assert_fail_lines(result, *fragments)


def not_implemented(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError()


_CELLS = itertools.count()


def from_cell(source: str, name: str) -> Any:
    """``name`` as defined by running ``source`` as a notebook cell: in a namespace of its own (its
    module is ``__main__``, so it is shipped by value to an answer process, globals and all), with
    its source registered in ``linecache`` for ``inspect.getsource``."""
    filename = f"<test cell {next(_CELLS)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the tests' own cells
    return namespace[name]
