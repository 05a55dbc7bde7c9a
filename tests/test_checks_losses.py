"""Properties shared by the loss checks: answers that raise, right values with a wrong gradient, inputs changed
in place, library names in comments or variables."""

from __future__ import annotations

import pytest

from course_utils.checks.distillation_loss import check_distillation_loss
from course_utils.checks.flooding import check_flooding
from course_utils.checks.focal_loss import check_focal_loss
from course_utils.checks.label_smoothing import check_label_smoothing
from tests.check_helpers import GRADIENT, IN_PLACE, assert_fails, assert_passes, run_check
from tests.test_checks_distillation_loss import (
    distill_detached_normaliser,
    distill_teacher_scaled_in_place,
)
from tests.test_checks_focal_loss import (
    focal_factor_under_no_grad,
    focal_mentioning_the_library,
    focal_targets_flipped_in_place,
    focal_value_with_bce_gradient,
)
from tests.test_checks_label_smoothing import (
    smoothing_detached_normaliser,
    smoothing_logits_shifted_in_place,
    smoothing_with_a_variable_named_label_smoothing,
    smoothing_with_the_keyword_in_a_string,
)


@pytest.mark.parametrize(
    "check",
    [check_focal_loss, check_label_smoothing, check_flooding, check_distillation_loss],
)
def test_checks_report_an_answer_that_raises_without_raising(check, capsys):
    def broken(*args):
        raise RuntimeError("boom")

    result, text = run_check(capsys, check, broken, hidden=True)
    assert not result
    assert "raised RuntimeError: boom" in text


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_focal_loss, focal_factor_under_no_grad),
        (check_focal_loss, focal_value_with_bce_gradient),
        (check_label_smoothing, smoothing_detached_normaliser),
        (check_distillation_loss, distill_detached_normaliser),
    ],
)
def test_an_answer_with_the_right_values_and_a_wrong_gradient_fails(check, fn, capsys):
    assert_fails(capsys, check, fn, GRADIENT)


@pytest.mark.parametrize(
    ("check", "fn", "name"),
    [
        (check_focal_loss, focal_targets_flipped_in_place, "targets"),
        (check_label_smoothing, smoothing_logits_shifted_in_place, "logits"),
        (check_distillation_loss, distill_teacher_scaled_in_place, "teacher_logits"),
    ],
)
def test_an_answer_that_changes_its_input_in_place_fails(check, fn, name, capsys):
    assert_fails(capsys, check, fn, f"{IN_PLACE} ({name})")


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (check_focal_loss, focal_mentioning_the_library),
        (check_label_smoothing, smoothing_with_a_variable_named_label_smoothing),
        (check_label_smoothing, smoothing_with_the_keyword_in_a_string),
    ],
)
def test_an_answer_that_only_mentions_the_library_passes_hidden(check, fn, capsys):
    assert_passes(capsys, check, fn, hidden=True)
