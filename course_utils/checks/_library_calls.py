"""Finding an answer that calls the reference: the hidden case shared by the stage 02, 04, 05 and
06 checks (the names the answer's source calls, resolved where possible, and a run-time tripwire).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from course_utils.checks._guards import ReferenceCalled, call_sites, tripwires
from course_utils.checks._report import Report

_LIBRARY_PACKAGES = ("course_utils", "torch", "sklearn", "scipy", "optuna", "numpy")


def _source_calls(
    fn: Callable[..., Any], banned: Sequence[str], libraries: Sequence[str] = _LIBRARY_PACKAGES
) -> list[str]:
    """Banned dotted names whose last part ``fn``'s source calls, read from its syntax tree
    (``_guards.call_sites``): a comment, a string or a variable naming one is not a call, nor is a
    call of the learner's own helper that happens to share the name (defined inside the answer, or
    a global of the answer's that does not come from one of ``libraries``). An attribute call
    (``sanity.expected_initial_loss(...)``) always counts.

    Globals are read from ``fn.__globals__``: the learner's module in a kernel; under trusted
    grading the stand-in's, which holds each name's module as the answer process reports it
    (``remote.AnswerProcess._stand_in``), so the two agree."""
    bare, attributes, _ = call_sites(fn)
    names = getattr(fn, "__globals__", {})
    found = []
    for dotted in banned:
        leaf = dotted.rsplit(".", 1)[-1]
        if (
            leaf in attributes
        ):  # sanity.expected_initial_loss(...): the library's, whatever the name
            found.append(dotted)
            continue
        if leaf not in bare:
            continue
        own = names.get(leaf)
        if own is not None and own is not fn and not _from_library(own, libraries):
            continue  # the learner's own helper that happens to share the name
        found.append(dotted)
    return found


def _from_library(obj: object, libraries: Sequence[str] = _LIBRARY_PACKAGES) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] in libraries


def _reference_case(
    report: Report, learner_fn: Callable[..., Any], banned: Sequence[str], run: Callable[[], Any]
) -> None:
    """Hidden-test case: the answer is not a library function, names no banned function in its
    source, and calls none of them while ``run()`` runs it (tripwires)."""
    with report.case("does not call the reference"):
        if _from_library(learner_fn):
            report.fail(
                f"your answer is the library function {learner_fn.__module__}."
                f"{getattr(learner_fn, '__name__', '?')}; write the function yourself"
            )
        found = _source_calls(learner_fn, banned)
        if found:
            report.fail(f"your answer calls {', '.join(found)}, which it should implement itself")
        with tripwires(list(banned)):
            try:
                run()
            except ReferenceCalled:
                raise
            except Exception:  # other errors are reported by the other cases
                pass
