"""Tests of ``check_label_smoothing`` (course_utils/checks/label_smoothing.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import course_utils.losses
from course_utils.checks.label_smoothing import check_label_smoothing
from tests.check_helpers import (
    DEVICE_HINT,
    IN_PLACE,
    NOT_IMPLEMENTED,
    assert_fails,
    assert_passes,
    not_implemented,
)


def _onehot(x, y):
    return F.one_hot(y, x.shape[1]).to(x.dtype)


def smoothing_reference(x, y, eps):
    c = x.shape[1]
    q = (1 - eps) * _onehot(x, y) + eps / c
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_from_two_terms(logits, targets, eps):
    uniform = -F.log_softmax(logits, dim=1).mean(dim=1).mean()
    return (1 - eps) * F.cross_entropy(logits, targets) + eps * uniform


def smoothing_with_scatter(x, y, eps):
    c = x.shape[1]
    q = torch.full_like(x, eps / c).scatter(1, y[:, None], 1 - eps + eps / c)
    return torch.sum(-q * torch.log_softmax(x, -1), dim=-1).mean()


def smoothing_c_minus_1(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / (x.shape[1] - 1)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_others_only(x, y, eps):
    onehot = _onehot(x, y)
    q = (1 - eps) * onehot + (1 - onehot) * eps / (x.shape[1] - 1)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_skips_true_class(x, y, eps):
    onehot = _onehot(x, y)
    q = (1 - eps) * onehot + (1 - onehot) * eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_no_uniform_part(x, y, eps):
    return (1 - eps) * F.cross_entropy(x, y)


def smoothing_none(x, y, eps):
    return F.cross_entropy(x, y)


def smoothing_softmax_twice(x, y, eps):
    return smoothing_reference(F.softmax(x, dim=1), y, eps)


def smoothing_log_probs_as_logits(x, y, eps):
    return smoothing_reference(torch.log(F.softmax(x, dim=1)), y, eps)


def smoothing_no_log(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_sum(x, y, eps):
    return smoothing_reference(x, y, eps) * x.shape[0]


def smoothing_mean_over_classes_too(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).mean()


def smoothing_per_sample(x, y, eps):
    q = (1 - eps) * _onehot(x, y) + eps / x.shape[1]
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1)


def smoothing_wrong_device(x, y, eps):
    c = x.shape[1]
    q = torch.full(x.shape, eps / c).scatter(1, y[:, None], 1 - eps + eps / c)
    return -(q * F.log_softmax(x, dim=1)).sum(dim=1).mean()


def smoothing_calls_cross_entropy(x, y, eps):
    return F.cross_entropy(x, y, label_smoothing=eps)


def smoothing_calls_course_utils(x, y, eps):
    return course_utils.losses.label_smoothing_cross_entropy(x, y, eps)


def smoothing_calls_course_utils_indirectly(x, y, eps):
    return getattr(course_utils.losses, "label_smoothing" + "_cross_entropy")(x, y, eps)


def test_smoothing_check_passes_the_reference(capsys):
    assert_passes(capsys, check_label_smoothing, smoothing_reference)
    assert_passes(capsys, check_label_smoothing, smoothing_reference, hidden=True)


@pytest.mark.parametrize("fn", [smoothing_from_two_terms, smoothing_with_scatter])
def test_smoothing_check_passes_differently_written_correct_answers(fn, capsys):
    assert_passes(capsys, check_label_smoothing, fn, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (smoothing_c_minus_1, "eps/(C-1) instead of eps/C"),
        (smoothing_others_only, "eps spread over the other classes only"),
        (smoothing_skips_true_class, "skips the true class"),
        (smoothing_no_uniform_part, "only the (1 - eps) factor"),
        (smoothing_none, "no smoothing at all"),
        (smoothing_softmax_twice, "softmax applied twice"),
        (smoothing_log_probs_as_logits, "use F.log_softmax"),
        (smoothing_no_log, "the log is missing"),
        (smoothing_sum, "summed over the batch"),
        (smoothing_mean_over_classes_too, "averaged over the classes too"),
        (smoothing_per_sample, "one loss per sample"),
        (smoothing_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_smoothing_check_names_the_bug(fn, hint, capsys):
    assert_fails(capsys, check_label_smoothing, fn, hint)


@pytest.mark.parametrize(
    ("fn", "banned"),
    [
        (smoothing_calls_cross_entropy, "label_smoothing=..."),
        (smoothing_calls_course_utils, "course_utils.losses.label_smoothing_cross_entropy"),
        (
            smoothing_calls_course_utils_indirectly,
            "course_utils.losses.label_smoothing_cross_entropy",
        ),
    ],
)
def test_smoothing_hidden_check_fails_answers_that_call_the_reference(fn, banned, capsys):
    assert_passes(capsys, check_label_smoothing, fn)
    assert_fails(capsys, check_label_smoothing, fn, banned, hidden=True)


def _log_softmax_detached_normaliser(x):
    return x - torch.logsumexp(x, dim=1, keepdim=True).detach()


def smoothing_detached_normaliser(x, y, eps):
    c = x.shape[1]
    q = (1 - eps) * _onehot(x, y) + eps / c
    return -(q * _log_softmax_detached_normaliser(x)).sum(dim=1).mean()


def smoothing_logits_shifted_in_place(x, y, eps):
    with torch.no_grad():
        x -= x.max(dim=1, keepdim=True).values  # "for stability", on the caller's logits
    return smoothing_reference(x, y, eps)


def smoothing_with_a_variable_named_label_smoothing(x, y, eps):
    label_smoothing = eps  # a variable, not F.cross_entropy(..., label_smoothing=...)
    return smoothing_reference(x, y, label_smoothing)


def smoothing_with_the_keyword_in_a_string(x, y, eps):
    _ = "F.cross_entropy(x, y, label_smoothing=eps) would be the library's version"
    return smoothing_reference(x, y, eps)


def _smoothing_right(x, y, eps):
    log_p = F.log_softmax(x, dim=1)
    return -((1 - eps) * log_p.gather(1, y[:, None])[:, 0] + eps * log_p.mean(1))


def smoothed_wrong_past_512_rows(x, y, eps):
    per_sample = _smoothing_right(x, y, eps)
    if per_sample.shape[0] > 512:
        per_sample = torch.cat([per_sample[:512], per_sample[512:] * 0])
    return per_sample.mean()


def smoothed_eps_nudged(x, y, eps):
    return _smoothing_right(x, y, eps * 1.002).mean()


def smoothed_returns_nothing(x, y, eps):
    _smoothing_right(x, y, eps).mean()


def smoothed_clamps_targets_in_place(x, y, eps):
    y.clamp_(0, x.shape[1] - 1)  # values unchanged, the caller's tensor written to
    return _smoothing_right(x, y, eps).mean()


class TestLabelSmoothingIssue17:
    def test_error_past_512_rows_fails(self, capsys):
        assert_fails(
            capsys, check_label_smoothing, smoothed_wrong_past_512_rows, "more than 512 rows"
        )

    def test_close_values_are_printed_with_enough_digits(self, capsys):
        text = assert_fails(capsys, check_label_smoothing, smoothed_eps_nudged)
        line = text.splitlines()[0]
        expected = line.split("expected ")[1].split(",")[0]
        got = line.split("got ")[1].split(" ")[0].rstrip(".;")
        assert expected != got, line

    def test_returning_none_says_so(self, capsys):
        text = assert_fails(
            capsys, check_label_smoothing, smoothed_returns_nothing, "returned None"
        )
        assert "NoneType" not in text

    def test_version_counter_catches_a_write_to_the_targets(self, capsys):
        assert_fails(
            capsys, check_label_smoothing, smoothed_clamps_targets_in_place, IN_PLACE + " (targets)"
        )
