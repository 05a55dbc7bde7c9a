"""Shared by the stage 01 checks (duplicates, near-duplicates, label errors): the hidden case that
fails an answer calling the reference or the library function the exercise replaces (calls read from the
answer's syntax tree, plus run-time tripwires), and the check that the tensors handed to the answer come
back unchanged ("changes its input in place (name)").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks._guards import ReferenceCalled, tripwires
from course_utils.checks._library_calls import _source_calls
from course_utils.checks._report import Report

Learner = Callable[..., Any]
_LIBRARIES = ("course_utils", "torch", "numpy", "sklearn", "scipy", "cleanlab")


def _reference_calls(fn: Learner, banned: list[str]) -> list[str]:
    """Banned names called in ``fn``'s source (``_library_calls._source_calls``, with the stage 01
    libraries): the answer's own ``def`` (the exercise's function has the reference's name), a
    comment, a string or a variable naming the reference is not a call, nor is a call of the
    learner's own helper of that name."""
    return _source_calls(fn, banned, _LIBRARIES)


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


def _expect_unchanged(
    report: Report, given: dict[str, torch.Tensor], kept: dict[str, torch.Tensor]
) -> None:
    """FAIL "changes its input in place (name)" for each tensor handed to the answer that no longer
    equals the copy kept aside (or gained requires_grad); noted without stopping the case, so an
    answer whose values are also wrong is told both."""
    for name, tensor in given.items():
        if tensor.requires_grad or not torch.equal(tensor, kept[name]):
            report.note(
                f"changes its input in place ({name}): the caller's tensor was modified; work on "
                "a copy (e.g. x = x.clone()) or use out-of-place operations"
            )
