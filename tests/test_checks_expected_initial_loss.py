"""Tests of ``check_expected_initial_loss`` (course_utils/checks/expected_initial_loss.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import sanity
from course_utils.checks import expected_initial_loss as checks
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def initial_loss_via_tensor(num_classes):
    return -torch.log(torch.tensor(1.0 / num_classes, dtype=torch.float64))


def initial_loss_calls_reference(num_classes):
    return sanity.expected_initial_loss(num_classes)


@pytest.mark.parametrize("hidden", [False, True])
def test_expected_initial_loss_passes_correct_answers(capsys, hidden):
    assert_passes(capsys, checks.check_expected_initial_loss, lambda c: math.log(c), hidden)
    assert_passes(capsys, checks.check_expected_initial_loss, initial_loss_via_tensor, hidden)
    assert_passes(capsys, checks.check_expected_initial_loss, lambda c: -np.log(1 / c), hidden)


def test_expected_initial_loss_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_expected_initial_loss, sanity.expected_initial_loss)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda c: math.log10(c), "log10 instead of the natural log"),
        (lambda c: math.log2(c), "log2 instead of the natural log"),
        (lambda c: 1 / c, "the probability 1/C"),
        (lambda c: math.log(1 / c), "wrong sign"),
        (lambda c: math.log(c - 1), "ln(C-1)"),
    ],
)
def test_expected_initial_loss_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_expected_initial_loss, answer, "num_classes=10", fragment)


def test_expected_initial_loss_rejects_non_numbers(capsys):
    assert_fails(
        capsys, checks.check_expected_initial_loss, lambda c: [math.log(c)], "single number"
    )


def test_expected_initial_loss_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_expected_initial_loss, not_implemented, "not implemented yet")


def test_expected_initial_loss_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_expected_initial_loss,
        initial_loss_calls_reference,
        "expected_initial_loss",
        "implement itself",
        hidden=True,
    )
    assert_fails(
        capsys,
        checks.check_expected_initial_loss,
        sanity.expected_initial_loss,
        "library function",
        hidden=True,
    )


# --- every size, hints from evidence (issue 17, classes 4, 7) ---


def initial_loss_table(num_classes):
    return {2: 0.693147, 3: 1.098612, 10: 2.302585, 1000: 6.907755}.get(num_classes, 0.0)


def initial_loss_almost(num_classes):
    return math.log(num_classes) * (1 + 2e-5)


def test_expected_initial_loss_tries_a_large_number_of_classes(capsys):
    assert_fails(
        capsys, checks.check_expected_initial_loss, initial_loss_table, "num_classes=50000"
    )


def test_expected_initial_loss_prints_numbers_that_differ(capsys):
    out = assert_fails(capsys, checks.check_expected_initial_loss, initial_loss_almost, "ln(10)")
    first = out.splitlines()[0]
    assert first.split(" = ")[1].split(",")[0] != first.split("got ")[1].split(" ")[0]


def test_expected_initial_loss_names_a_missing_return(capsys):
    out = assert_fails(capsys, checks.check_expected_initial_loss, lambda c: None, "got None")
    assert "shape" not in out


def test_hidden_catches_the_reference_called_by_its_module_under_the_answers_own_name() -> None:
    """The answer is named like the reference and calls it through its module: an attribute call is
    the library's, whatever the learner's globals hold under that name (a forgery seen in the hostile
    batch: it scored full marks when the check's module no longer imported course_utils.sanity)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        import course_utils
        from course_utils.checks import check_expected_initial_loss
        assert "course_utils.sanity" not in sys.modules  # the check must not rely on it being there

        def expected_initial_loss(num_classes):
            import course_utils.sanity
            return course_utils.sanity.expected_initial_loss(num_classes)

        result = check_expected_initial_loss(expected_initial_loss, hidden=True)
        print("PASSED" if result.passed else "FAILED")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "FAILED" in out.stdout and "course_utils.sanity.expected_initial_loss" in out.stdout, (
        out.stdout + out.stderr
    )
