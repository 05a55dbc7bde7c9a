"""Tests of ``check_distillation_loss`` (course_utils/checks/distillation_loss.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import course_utils.losses
from course_utils.checks.distillation_loss import check_distillation_loss
from tests.check_helpers import (
    DEVICE_HINT,
    IN_PLACE,
    NOT_IMPLEMENTED,
    assert_fails,
    assert_passes,
    not_implemented,
)
from tests.test_checks_label_smoothing import _log_softmax_detached_normaliser


def distill_reference(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_log_target(student_logits, teacher_logits, temperature):
    log_q = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="sum", log_target=True) / student_logits.shape[0]
    return kl * temperature * temperature


def distill_by_hand(s, t, T):
    log_p = F.log_softmax(t / T, 1)
    per_sample = (log_p.exp() * (log_p - F.log_softmax(s / T, 1))).sum(1)
    return T**2 * per_sample.mean()


def distill_no_t2(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_times_t(s, t, T):
    return T * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_reversed(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1), reduction="batchmean")


def distill_mean(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="mean")


def distill_sum(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum")


def distill_t_student_only(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean")


def distill_t_teacher_only(s, t, T):
    return T**2 * F.kl_div(F.log_softmax(s, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_swapped(s, t, T):
    return T**2 * F.kl_div(F.softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean")


def distill_probabilities_as_input(s, t, T):
    return T**2 * F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")


def distill_cross_entropy(s, t, T):
    soft_targets = F.softmax(t / T, 1)
    return -(soft_targets * F.log_softmax(s / T, 1)).sum(1).mean() * T**2


def distill_log_of_softmax(s, t, T):
    log_q = torch.log(F.softmax(s / T, 1))
    return T**2 * F.kl_div(log_q, F.softmax(t / T, 1), reduction="batchmean")


def distill_wrong_device(s, t, T):
    total = torch.zeros(s.shape[0])
    total = total + (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))).sum(
        1
    )
    return T**2 * total.mean()


def distill_calls_course_utils(s, t, T):
    return course_utils.losses.distillation_loss(s, t, temperature=T)


def test_distillation_check_passes_the_reference(capsys):
    assert_passes(capsys, check_distillation_loss, distill_reference)
    assert_passes(capsys, check_distillation_loss, distill_reference, hidden=True)


@pytest.mark.parametrize("fn", [distill_log_target, distill_by_hand])
def test_distillation_check_passes_differently_written_correct_answers(fn, capsys):
    assert_passes(capsys, check_distillation_loss, fn, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (distill_no_t2, "T**2 factor is missing"),
        (distill_times_t, "multiplied by T; the factor is T**2"),
        (distill_reversed, "KL in the wrong direction"),
        (distill_mean, "reduction='mean' divides by N*C"),
        (distill_sum, "summed over the batch"),
        (distill_t_student_only, "temperature applied to the student only"),
        (distill_t_teacher_only, "temperature applied to the teacher only"),
        (distill_swapped, "log_softmax and softmax swapped"),
        (distill_probabilities_as_input, "probabilities passed as F.kl_div's input"),
        (distill_cross_entropy, "soft cross-entropy"),
        (distill_log_of_softmax, "use F.log_softmax"),
        (distill_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_distillation_check_names_the_bug(fn, hint, capsys):
    assert_fails(capsys, check_distillation_loss, fn, hint)


def test_distillation_hidden_check_fails_answers_that_call_the_reference(capsys):
    assert_passes(capsys, check_distillation_loss, distill_calls_course_utils)
    assert_fails(
        capsys,
        check_distillation_loss,
        distill_calls_course_utils,
        "course_utils.losses.distillation_loss",
        hidden=True,
    )


def distill_detached_normaliser(s, t, T):
    log_q = _log_softmax_detached_normaliser(s / T)
    return T**2 * F.kl_div(log_q, F.softmax(t / T, 1), reduction="batchmean")


def distill_teacher_scaled_in_place(s, t, T):
    t /= T  # the teacher's logits divided in the caller's tensor
    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1), reduction="batchmean")


def distill_wrong_past_512_rows(s, t, T):
    log_q, log_p = F.log_softmax(s / T, 1), F.log_softmax(t / T, 1)
    per_sample = (log_p.exp() * (log_p - log_q)).sum(1)
    if per_sample.shape[0] > 512:
        per_sample = per_sample[:512]
    return T**2 * per_sample.mean()


def distill_returns_nothing(s, t, T):
    distill_by_hand(s, t, T)


def distill_touches_teacher(s, t, T):
    t.mul_(1.0)  # values unchanged, the caller's teacher logits written to
    return distill_by_hand(s, t, T)


class TestDistillationIssue17:
    def test_error_past_512_rows_fails(self, capsys):
        assert_fails(
            capsys, check_distillation_loss, distill_wrong_past_512_rows, "more than 512 rows"
        )

    def test_returning_none_says_so(self, capsys):
        text = assert_fails(
            capsys, check_distillation_loss, distill_returns_nothing, "returned None"
        )
        assert "NoneType" not in text

    def test_version_counter_catches_a_write_to_the_teacher(self, capsys):
        assert_fails(
            capsys,
            check_distillation_loss,
            distill_touches_teacher,
            IN_PLACE + " (teacher_logits)",
        )
