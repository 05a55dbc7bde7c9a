"""Tests of ``check_focal_loss`` (course_utils/checks/focal_loss.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops

import course_utils.losses
from course_utils.checks.focal_loss import check_focal_loss
from tests.check_helpers import (
    DETACHED,
    DEVICE_HINT,
    IN_PLACE,
    NOT_IMPLEMENTED,
    assert_fails,
    assert_passes,
    not_implemented,
    run_check,
)


def _focal_parts(x, y, alpha):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return p, ce, p_t, alpha_t


def focal_reference(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p_t) ** gamma * ce


def focal_with_logsigmoid(logits, targets, alpha=0.25, gamma=2.0):
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    log_p_t = torch.where(targets > 0.5, log_p, log_not_p)
    alpha_t = torch.where(targets > 0.5, alpha, 1 - alpha)
    return -alpha_t * (1 - log_p_t.exp()) ** gamma * log_p_t


def focal_no_alpha(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return (1 - p_t) ** gamma * ce


def focal_alpha_positives_only(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha * y * (1 - p_t) ** gamma * ce


def focal_alpha_swapped(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return (1 - alpha_t) * (1 - p_t) ** gamma * ce


def focal_alpha_everywhere(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha * (1 - p_t) ** gamma * ce


def focal_p_t_gamma(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * p_t**gamma * ce


def focal_one_minus_p(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p) ** gamma * ce


def focal_softmax(x, y, alpha=0.25, gamma=2.0):
    p = torch.softmax(x, dim=-1)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def focal_softmax_bce(x, y, alpha=0.25, gamma=2.0):
    p = torch.softmax(x, dim=-1)
    ce = F.binary_cross_entropy(p, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    return (alpha * y + (1 - alpha) * (1 - y)) * (1 - p_t) ** gamma * ce


def focal_mean(x, y, alpha=0.25, gamma=2.0):
    return focal_reference(x, y, alpha, gamma).mean()


def focal_bce_mean(x, y, alpha=0.25, gamma=2.0):
    p, _, p_t, alpha_t = _focal_parts(x, y, alpha)
    return alpha_t * (1 - p_t) ** gamma * F.binary_cross_entropy_with_logits(x, y)


def focal_naive_log(x, y, alpha=0.25, gamma=2.0):
    p, _, p_t, alpha_t = _focal_parts(x, y, alpha)
    log_term = y * torch.log(p) + (1 - y) * torch.log(1 - p)
    return -alpha_t * (1 - p_t) ** gamma * log_term


def focal_clamped_probabilities(x, y, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x).clamp(1e-6, 1 - 1e-6)
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)


def focal_wrong_device(x, y, alpha=0.25, gamma=2.0):
    ones = torch.ones(x.shape)
    p, ce, p_t, _ = _focal_parts(x, y, alpha)
    return (alpha * y + (1 - alpha) * (ones - y)) * (1 - p_t) ** gamma * ce


def focal_detached(x, y, alpha=0.25, gamma=2.0):
    return focal_reference(x, y, alpha, gamma).detach()


def focal_calls_torchvision(x, y, alpha=0.25, gamma=2.0):
    return torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma)


def focal_calls_course_utils(x, y, alpha=0.25, gamma=2.0):
    return course_utils.losses.sigmoid_focal_loss(x, y, alpha, gamma)


def focal_calls_torchvision_indirectly(x, y, alpha=0.25, gamma=2.0):
    # the name is built at run time, so only the tripwire sees it
    return getattr(torchvision.ops, "sigmoid" + "_focal_loss")(x, y, alpha, gamma)


def test_focal_check_passes_the_reference(capsys):
    assert_passes(capsys, check_focal_loss, focal_reference)
    assert_passes(capsys, check_focal_loss, focal_reference, hidden=True)


def test_focal_check_passes_a_differently_written_correct_answer(capsys):
    assert_passes(capsys, check_focal_loss, focal_with_logsigmoid, hidden=True)


def test_focal_check_passes_course_utils_reference_when_not_hidden(capsys):
    assert_passes(capsys, check_focal_loss, course_utils.losses.sigmoid_focal_loss)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (focal_no_alpha, "alpha_t is missing"),
        (focal_alpha_positives_only, "applied to the positives only"),
        (focal_alpha_swapped, "alpha_t is swapped"),
        (focal_alpha_everywhere, "alpha multiplies every element"),
        (focal_p_t_gamma, "modulating factor p_t**gamma"),
        (focal_one_minus_p, "(1 - p)**gamma for every element"),
        (focal_softmax, "probabilities from a softmax"),
        (focal_softmax_bce, "probabilities from a softmax"),
        (focal_mean, "reduced to one number"),
        (focal_bce_mean, "defaults to reduction='mean'"),
        (focal_naive_log, "overflow for large |x|"),
        (focal_clamped_probabilities, "overflow for large |x|"),
        (focal_wrong_device, DEVICE_HINT),
        (focal_detached, DETACHED),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_focal_check_names_the_bug(fn, hint, capsys):
    assert_fails(capsys, check_focal_loss, fn, hint)


def test_focal_check_stops_after_the_first_case_when_not_implemented(capsys):
    result, _ = run_check(capsys, check_focal_loss, not_implemented, hidden=True)
    assert len(result.lines) == 1


@pytest.mark.parametrize(
    ("fn", "banned"),
    [
        (focal_calls_torchvision, "torchvision.ops.sigmoid_focal_loss"),
        (focal_calls_course_utils, "course_utils.losses.sigmoid_focal_loss"),
        (focal_calls_torchvision_indirectly, "torchvision.ops.sigmoid_focal_loss"),
    ],
)
def test_focal_hidden_check_fails_answers_that_call_the_reference(fn, banned, capsys):
    assert_passes(capsys, check_focal_loss, fn)
    assert_fails(capsys, check_focal_loss, fn, banned, hidden=True)


def test_focal_tripwires_are_removed_after_the_check(capsys):
    original = torchvision.ops.sigmoid_focal_loss
    run_check(capsys, check_focal_loss, focal_calls_torchvision_indirectly, hidden=True)
    assert torchvision.ops.sigmoid_focal_loss is original
    assert course_utils.losses.sigmoid_focal_loss.__module__ == "course_utils.losses"


def test_focal_check_is_deterministic(capsys):
    first, _ = run_check(capsys, check_focal_loss, focal_no_alpha)
    second, _ = run_check(capsys, check_focal_loss, focal_no_alpha)
    assert first.lines == second.lines


def focal_factor_under_no_grad(x, y, alpha=0.25, gamma=2.0):
    p, ce, p_t, alpha_t = _focal_parts(x, y, alpha)
    with torch.no_grad():
        factor = (1 - p_t) ** gamma
    return alpha_t * factor * ce


def focal_value_with_bce_gradient(x, y, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    return ce + (focal_reference(x, y, alpha, gamma) - ce).detach()


def focal_targets_flipped_in_place(x, y, alpha=0.25, gamma=2.0):
    loss = focal_reference(x, y, alpha, gamma)
    y.mul_(2).sub_(1)  # "to +-1 for later": the caller's targets are gone
    return loss


def focal_mentioning_the_library(x, y, alpha=0.25, gamma=2.0):
    # the same numbers as torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma)
    return focal_reference(x, y, alpha, gamma)


def focal_default_alpha_half(x, y, alpha=0.5, gamma=2.0):
    return focal_reference(x, y, alpha, gamma)


def focal_wrong_past_512_rows(x, y, alpha=0.25, gamma=2.0):
    out = focal_reference(x, y, alpha, gamma)
    return torch.cat([out[:512], out[512:] * 1.01]) if out.shape[0] > 512 else out


def focal_returns_nothing(x, y, alpha=0.25, gamma=2.0):
    focal_reference(x, y, alpha, gamma)


def focal_clamps_logits_in_place(x, y, alpha=0.25, gamma=2.0):
    with torch.no_grad():
        x.clamp_(-100.0, 100.0)  # no value changes here, but the caller's tensor was written to
    return focal_reference(x, y, alpha, gamma)


class TestFocalIssue17:
    def test_defaults_are_exercised(self, capsys):
        text = assert_fails(capsys, check_focal_loss, focal_default_alpha_half, "at their defaults")
        assert len(text.splitlines()) == 1

    def test_error_past_512_rows_is_located(self, capsys):
        text = assert_fails(
            capsys, check_focal_loss, focal_wrong_past_512_rows, "more than 512 rows"
        )
        assert "at index (5" in text and "elements differ" in text

    def test_returning_none_says_so(self, capsys):
        text = assert_fails(capsys, check_focal_loss, focal_returns_nothing, "returned None")
        assert "shape ()" not in text and "NoneType" not in text

    def test_version_counter_catches_a_write_that_keeps_the_values(self, capsys):
        assert_fails(capsys, check_focal_loss, focal_clamps_logits_in_place, IN_PLACE + " (logits)")

    def test_alpha_swapped_is_named_only_where_the_input_tells(self, capsys):
        text = assert_fails(capsys, check_focal_loss, focal_alpha_everywhere, hidden=True)
        targets_line = [line for line in text.splitlines() if "all-negative" in line]
        assert targets_line and "alpha_t is swapped" not in targets_line[0]
        assert "alpha multiplies every element" in text
