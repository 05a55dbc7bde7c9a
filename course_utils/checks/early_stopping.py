"""Check for stage 04's ``should_stop(val_losses, patience, min_delta=0.0) -> bool``.

Early stopping as in ``course_utils.early_stopping``: stop once the last ``patience`` epochs brought no
improvement larger than ``min_delta`` over the best loss before them.

Coverage:

- value: the answer on every prefix of hand-made and random loss histories (one of 600 epochs, past
  any natural block size, on every 7th prefix) equals the reference's;
- input untouched: the history list comes back with the same length and values after every call
  (no ``pop``, ``sort``, ``append`` or ``reverse`` on the caller's list);
- every argument: patience 1 to 520, min_delta left at its default 0.0 and 0.0, 0.005, 0.01, 0.05,
  0.1 passed explicitly;
- contract: returns a bool (a Python or NumPy bool, or a one-element bool tensor), False for an empty
  history; no call of the course's version (hidden);
- hints: a classic bug is named only when it alone explains the answers (on all cases, or on the
  failing case); otherwise the FAIL line gives the prefix and the expected and returned values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from course_utils import early_stopping
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._library_calls import _reference_case
from course_utils.checks._report import CheckResult, Report, describe

__all__ = ["check_early_stopping"]


def _stop_late(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited > patience


def _stop_early(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited >= patience - 1


def _stop_vs_previous(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    previous, waited = math.inf, 0
    for loss in losses:
        waited = 0 if loss < previous - min_delta else waited + 1
        previous = loss
    return waited >= patience


def _stop_no_delta(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    return early_stopping.should_stop(losses, patience, 0.0)


def _stop_max(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    return early_stopping.should_stop([-v for v in losses], patience, min_delta)


def _stop_ties_improve(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        best, waited = (loss, 0) if loss <= best - min_delta else (best, waited + 1)
    return waited >= patience


def _stop_best_always(losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    best, waited = math.inf, 0
    for loss in losses:
        waited = 0 if loss < best - min_delta else waited + 1
        best = min(best, loss)
    return waited >= patience


_STOPPING_BUGS: dict[str, Callable[..., bool]] = {
    "stops one epoch late: stop when the count of epochs without improvement reaches patience "
    "(>=), not when it exceeds it": _stop_late,
    "stops one epoch early: stop when `patience` epochs in a row did not improve, not "
    "patience - 1": _stop_early,
    "compares each loss with the previous epoch; compare with the best loss so far": (
        _stop_vs_previous
    ),
    "ignores min_delta: an epoch improves only when loss < best - min_delta": _stop_no_delta,
    "treats a higher loss as an improvement; a validation loss improves when it goes "
    "down": _stop_max,
    "counts a loss equal to the best (within min_delta) as an improvement; it must be strictly "
    "lower than best - min_delta": _stop_ties_improve,
    "updates the best value on epochs that did not improve by more than min_delta; the best only "
    "moves when an epoch counts as an improvement": _stop_best_always,
}


def _as_bool(report: Report, value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value)
    report.fail(f"should return True or False, got {describe(value)}")
    raise AssertionError  # unreachable


StoppingCase = tuple[list[float], int, Any]  # min_delta: a float or DEFAULT_DELTA


DEFAULT_DELTA = object()  # marks a case whose min_delta is left at the answer's default


def _ends(losses: Sequence[float]) -> list[int]:
    """The prefix lengths tried: all of them, or every 7th (and the whole) for a long history."""
    if len(losses) <= 60:
        return list(range(len(losses) + 1))
    return sorted(set(range(0, len(losses) + 1, 7)) | {len(losses)})


def _stopping_outputs(fn: Callable[..., Any], case: StoppingCase) -> list[object]:
    """``fn`` on every prefix (including the empty one) of the case's losses."""
    losses, patience, min_delta = case
    delta = 0.0 if min_delta is DEFAULT_DELTA else min_delta
    return [fn(list(losses[:end]), patience, delta) for end in _ends(losses)]


def _learner_outputs(report: Report, fn: Callable[..., Any], case: StoppingCase) -> list[bool]:
    """The answer on every prefix; fail if it changes the list it was given."""
    losses, patience, min_delta = case
    answers = []
    for end in _ends(losses):
        history = list(losses[:end])
        kept = keep(val_losses=history)
        if min_delta is DEFAULT_DELTA:
            got = fn(history, patience)
        else:
            got = fn(history, patience, min_delta)
        expect_untouched(report, kept)
        answers.append(_as_bool(report, got))
    return answers


def _stopping_hint(
    answers: dict[int, list[bool]],
    cases: list[StoppingCase],
    index: int,
    right: set[int] | None = None,
) -> str | None:
    """The one bug that explains every answer, else the one bug explaining this case's answers
    and those of every case the answer got right (``right``); None when no bug, or more than
    one, does: the evidence does not identify it."""
    right = set() if right is None else right
    this_and_right = {i: got for i, got in answers.items() if i == index or i in right}
    for scope in (answers, this_and_right):
        explaining = [
            hint
            for hint, bug in _STOPPING_BUGS.items()
            if all(_stopping_outputs(bug, cases[i]) == got for i, got in scope.items())
        ]
        if len(explaining) == 1:
            return explaining[0]
        if explaining:
            return None
    return None


def check_early_stopping(
    learner_fn: Callable[[Sequence[float], int, float], bool], *, hidden: bool = False
) -> CheckResult:
    """Check ``should_stop(val_losses, patience, min_delta=0.0) -> bool``.

    Expected (the Keras/Lightning convention, ``course_utils.early_stopping.should_stop``): walk the
    validation losses with best = +inf and a counter at 0. A loss below ``best - min_delta`` is an
    improvement: best becomes that loss and the counter goes back to 0. Any other loss adds 1 to the
    counter. Return True when the counter is >= ``patience`` (False for an empty list). Example:
    ``should_stop([1.0, 0.8, 0.85, 0.9], patience=2)`` is True.

    The check calls the answer on every prefix of hand-made and random loss histories (positional
    arguments ``(list_of_floats, patience, min_delta)``). Hidden: patience 1, plateaus, larger
    deltas.
    """
    report = Report("early_stopping")
    cases: list[StoppingCase] = [
        ([1.0, 0.8, 0.85, 0.9, 0.95, 0.97], 2, DEFAULT_DELTA),
        ([1.0, 0.5, 0.9, 0.8, 0.7, 0.6], 2, 0.0),
        ([1.0, 0.95, 0.92, 0.9, 0.89], 2, 0.1),
        ([1.0, 1.2, 1.3, 1.4], 2, DEFAULT_DELTA),
        ([1.0, 1.0, 1.0, 1.0], 2, DEFAULT_DELTA),
        ([1.0, 0.95, 0.86, 0.8, 0.79], 2, 0.1),
    ]
    rng = np.random.default_rng(0)
    for patience, min_delta in [(3, 0.0), (2, 0.01), (4, 0.005)]:
        walk = 1.0 + np.cumsum(rng.normal(-0.01, 0.02, size=25))
        cases.append(([round(float(v), 4) for v in walk], patience, min_delta))
    # small steps that count as improvements only with min_delta at its default 0
    cases.append(([1.0, 0.995, 0.99, 0.985, 0.98, 0.975], 2, DEFAULT_DELTA))
    # 600 epochs, past any natural block size: 50 improving, then 550 that never beat the best
    # (patience 520: the stop comes more than 512 epochs after the best loss)
    long = np.r_[np.linspace(2.0, 0.5, 50), 0.501 + np.abs(rng.normal(0, 0.01, 550))]
    cases.append(([round(float(v), 5) for v in long], 520, DEFAULT_DELTA))
    if hidden:
        cases += [
            ([0.5, 0.6, 0.4, 0.45], 1, 0.0),
            ([2.0] * 6, 3, 0.0),
            ([1.0, 0.7, 0.65, 0.62, 0.5, 0.49, 0.48, 0.47], 3, 0.05),
        ]

    def label(losses: list[float]) -> str:
        more = f"... ({len(losses)} epochs)" if len(losses) > 6 else ""
        return f"losses={losses[:6]}{more}"

    answers: dict[int, list[bool]] = {}
    for i, case in enumerate(cases):  # first run everything, so one bug can explain all cases
        with report.case(label(case[0])):
            answers[i] = _learner_outputs(report, learner_fn, case)
    wrong = [
        i
        for i, got in answers.items()
        if got != _stopping_outputs(early_stopping.should_stop, cases[i])
    ]
    for i in wrong[:3]:
        got = answers[i]
        losses, patience, min_delta = cases[i]
        expected = _stopping_outputs(early_stopping.should_stop, cases[i])
        with report.case(label(losses)):
            k = next(k for k, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e)
            end = _ends(losses)[k]
            shown = [round(v, 4) for v in losses[:end]]
            if len(shown) > 12:
                shown_text = f"[{', '.join(map(str, shown[:4]))}, ..., {shown[-1]}] ({end} losses)"
            else:
                shown_text = str(shown)
            delta = "" if min_delta is DEFAULT_DELTA else f", min_delta={min_delta}"
            message = (
                f"should_stop({shown_text}, patience={patience}{delta}): expected {expected[k]}, "
                f"got {got[k]}"
            )
            hint = _stopping_hint(answers, cases, i, set(answers) - set(wrong))
            report.fail(message + (f". Looks like: {hint}" if hint else ""))
    if len(wrong) > 3:
        with report.case(f"{len(wrong) - 3} more loss histories"):
            report.fail("the answer differs from the expected one on these too")
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.early_stopping.should_stop",
                "course_utils.early_stopping.EarlyStopping",
            ],
            lambda: learner_fn([1.0, 0.9, 0.95], 2, 0.0),
        )
    return report.finish(f"matches on every prefix of {len(cases)} loss histories")
