"""Tests of ``check_early_stopping`` (course_utils/checks/early_stopping.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest

from course_utils import early_stopping
from course_utils.checks import early_stopping as checks
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def stop_since_best_index(val_losses, patience, min_delta=0.0):
    best_index, best = -1, float("inf")
    for i, loss in enumerate(val_losses):
        if loss < best - min_delta:
            best_index, best = i, loss
    return len(val_losses) - 1 - best_index >= patience


def stop_with_the_class(val_losses, patience, min_delta=0.0):
    stopper = early_stopping.EarlyStopping(patience, min_delta)
    return any([stopper.step(v) for v in val_losses][-1:])


def stop_late(val_losses, patience, min_delta=0.0):
    return checks._stop_late(val_losses, patience, min_delta)


@pytest.mark.parametrize("hidden", [False, True])
def test_early_stopping_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_early_stopping, stop_since_best_index, hidden)


def test_early_stopping_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_early_stopping, early_stopping.should_stop)


@pytest.mark.parametrize(
    ("bug", "fragment"),
    [
        (checks._stop_late, "stops one epoch late"),
        (checks._stop_early, "stops one epoch early"),
        (checks._stop_vs_previous, "compares each loss with the previous epoch"),
        (checks._stop_no_delta, "ignores min_delta"),
        (checks._stop_max, "treats a higher loss as an improvement"),
        (checks._stop_ties_improve, "counts a loss equal to the best"),
        (checks._stop_best_always, "updates the best value"),
    ],
)
def test_early_stopping_names_classic_bugs(capsys, bug, fragment):
    def answer(val_losses, patience, min_delta=0.0):
        return bug(val_losses, patience, min_delta)

    assert_fails(capsys, checks.check_early_stopping, answer, "expected", fragment)


def test_early_stopping_rejects_non_bools(capsys):
    assert_fails(capsys, checks.check_early_stopping, lambda v, p, d=0.0: None, "True or False")


def test_early_stopping_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_early_stopping, not_implemented, "not implemented yet")


def test_early_stopping_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys, checks.check_early_stopping, stop_with_the_class, "EarlyStopping", hidden=True
    )
