"""Shared by the stage 01 checks (duplicates, near-duplicates, label errors): the hidden case that
fails an answer calling the reference or the library function the exercise replaces.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from course_utils.checks._guards import ReferenceCalled, tripwires
from course_utils.checks._report import Report

Learner = Callable[..., Any]


def _reference_calls(fn: Learner, banned: list[str]) -> list[str]:
    """Banned names called in ``fn``'s source, ignoring ``fn``'s own ``def`` line (the exercise's
    function has the same name as the reference)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return []
    name = getattr(fn, "__name__", "")
    text = re.sub(rf"^\s*def\s+{re.escape(name)}\s*\(", "", text, count=1, flags=re.MULTILINE)
    found = []
    for dotted in banned:
        leaf = dotted.rsplit(".", 1)[-1]
        if re.search(rf"(?<![\w]){re.escape(leaf)}\s*\(", text):
            found.append(dotted)
    return found


def _hidden_reference_case(
    report: Report,
    learner_fn: Learner,
    banned: list[str],
    run: Callable[[], Any],
    source_only: tuple[str, ...] = (),
) -> None:
    with report.case("hidden: the answer is your own code, not the course's reference"):
        called = _reference_calls(learner_fn, banned + list(source_only))
        report.expect(
            not called,
            f"your answer calls {', '.join(called)}; write it yourself (the reference is what the "
            "check compares you against)",
        )
        try:
            with tripwires(banned):
                run()
        except ReferenceCalled as called_at_run_time:
            report.fail(f"{called_at_run_time}; the check compares you against it")
