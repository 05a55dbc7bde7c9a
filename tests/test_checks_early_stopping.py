"""Tests of ``check_early_stopping`` (course_utils/checks/early_stopping.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import early_stopping
from course_utils.checks import early_stopping as checks
from course_utils.checks.early_stopping import check_early_stopping
from tests.check_helpers import IN_PLACE, assert_fails, assert_passes, not_implemented


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
    assert_passes(capsys, check_early_stopping, stop_since_best_index, hidden)


def test_early_stopping_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, check_early_stopping, early_stopping.should_stop)


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

    assert_fails(capsys, check_early_stopping, answer, "expected", fragment)


def test_early_stopping_rejects_non_bools(capsys):
    assert_fails(capsys, check_early_stopping, lambda v, p, d=0.0: None, "True or False")


def test_early_stopping_reports_not_implemented(capsys):
    assert_fails(capsys, check_early_stopping, not_implemented, "not implemented yet")


def test_early_stopping_hidden_catches_the_reference(capsys):
    assert_fails(capsys, check_early_stopping, stop_with_the_class, "EarlyStopping", hidden=True)


def stop_vectorised(val_losses, patience, min_delta=0.0):
    # another algorithm, NumPy only (no torch, no course_utils.early_stopping.should_stop)
    best, waited = np.inf, 0
    for loss in np.asarray(val_losses, dtype=float):
        improved = loss < best - min_delta
        best = loss if improved else best
        waited = 0 if improved else waited + 1
    return np.bool_(waited >= patience)


def stop_pops_the_history(val_losses, patience, min_delta=0.0):
    best, waited = float("inf"), 0
    while val_losses:
        loss = val_losses.pop(0)  # consumes the caller's list
        best, waited = (loss, 0) if loss < best - min_delta else (best, waited + 1)
    return waited >= patience


def stop_sorts_the_history(val_losses, patience, min_delta=0.0):
    answer = early_stopping.should_stop(list(val_losses), patience, min_delta)
    val_losses.sort()  # e.g. to find the best loss
    return answer


def stop_default_delta(val_losses, patience, min_delta=0.01):
    return early_stopping.should_stop(list(val_losses), patience, min_delta)


def stop_last_512(val_losses, patience, min_delta=0.0):
    """Looks at the last 512 epochs only: wrong once the best loss is older than that."""
    return early_stopping.should_stop(list(val_losses)[-512:], patience, min_delta)


class TestEarlyStoppingIssue17:
    def test_numpy_answer_returning_numpy_bool_passes(self, capsys):
        assert_passes(capsys, check_early_stopping, stop_vectorised, hidden=True)

    @pytest.mark.parametrize("answer", [stop_pops_the_history, stop_sorts_the_history])
    def test_changing_the_history_fails(self, capsys, answer):
        assert_fails(capsys, check_early_stopping, answer, IN_PLACE + " (val_losses)")

    def test_min_delta_default_is_exercised(self, capsys):
        text = assert_fails(capsys, check_early_stopping, stop_default_delta, "expected")
        assert "min_delta=" not in text.splitlines()[0]  # the first failure is a default call

    def test_a_long_history_is_checked(self, capsys):
        text = assert_fails(capsys, check_early_stopping, stop_last_512, "(600 epochs)")
        assert "Looks like" not in text  # no classic bug explains it

    def test_hint_only_when_one_bug_explains_the_answers(self):
        cases = [([1.0, 1.0, 1.0], 2, 0.0)]
        # on a flat history "late" and "ties improve" both differ; an answer matching several
        # bugs at once gets no hint
        answers = {0: [False, False, False, False]}
        explaining = [
            hint
            for hint, bug in checks._STOPPING_BUGS.items()
            if checks._stopping_outputs(bug, cases[0]) == answers[0]
        ]
        assert len(explaining) > 1
        assert checks._stopping_hint(answers, cases, 0) is None
