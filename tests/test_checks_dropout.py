"""Tests of ``check_dropout`` (course_utils/checks/dropout.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils import layers as ref_layers
from course_utils.checks.dropout import check_dropout
from tests.check_helpers import (
    DEVICE_HINT_START,
    IN_PLACE,
    assert_fail_lines,
    assert_pass_lines,
    not_implemented,
    run_check,
)


def dropout_rewrite(x, keep_prob, training=True):
    if not training:
        return x
    mask = (torch.rand_like(x) < keep_prob).to(x.dtype)
    return x * mask / keep_prob


def dropout_drop_as_keep(x, keep_prob, training=True):
    if not training:
        return x
    mask = (torch.rand_like(x) < 1 - keep_prob).to(x.dtype)
    return x * mask / (1 - keep_prob)


def dropout_unscaled(x, keep_prob, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) < keep_prob).to(x.dtype)


def dropout_always_on(x, keep_prob, training=True):
    return x * (torch.rand_like(x) < keep_prob).to(x.dtype) / keep_prob


def dropout_non_inverted(x, keep_prob, training=True):
    if not training:
        return x * keep_prob
    return x * (torch.rand_like(x) < keep_prob).to(x.dtype)


def dropout_one_mask_per_batch(x, keep_prob, training=True):
    if not training:
        return x
    mask = (torch.rand_like(x[0]) < keep_prob).to(x.dtype)
    return x * mask / keep_prob


def dropout_cpu_mask(x, keep_prob, training=True):
    if not training:
        return x
    mask = (torch.rand(x.shape) < keep_prob).to(x.dtype)
    return x * mask / keep_prob


def dropout_calls_torch(x, keep_prob, training=True):
    return F.dropout(x, 1 - keep_prob, training)


class TestCheckDropout:
    def test_reference_passes_visible_and_hidden(self, capsys):
        assert_pass_lines(run_check(capsys, check_dropout, ref_layers.dropout)[0])

    def test_rewrite_with_rand_like_passes_hidden(self, capsys):
        assert_pass_lines(run_check(capsys, check_dropout, dropout_rewrite, hidden=True)[0])

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (dropout_drop_as_keep, "keep_prob used as the drop probability"),
            (dropout_unscaled, "missing 1/keep_prob scaling"),
            (dropout_always_on, "still active in eval mode"),
            (dropout_non_inverted, "scaled by keep_prob at eval time"),
            (dropout_one_mask_per_batch, "every row (sample) got the same mask"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        assert_fail_lines(run_check(capsys, check_dropout, answer)[0], needle)

    def test_not_implemented(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_dropout, not_implemented)[0], "not implemented yet"
        )

    def test_cpu_mask_fails_with_device_hint(self, capsys):
        result = run_check(capsys, check_dropout, dropout_cpu_mask)[0]
        assert_fail_lines(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_library_fails_hidden_only(self, capsys):
        assert_pass_lines(run_check(capsys, check_dropout, dropout_calls_torch)[0])
        assert_fail_lines(
            run_check(capsys, check_dropout, dropout_calls_torch, hidden=True)[0],
            "torch.nn.functional.dropout",
        )

    def test_leaves_the_global_rng_untouched(self, capsys):
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        run_check(capsys, check_dropout, dropout_rewrite)[0]
        assert torch.equal(torch.rand(3), expected)

    def test_is_deterministic(self, capsys):
        first = run_check(capsys, check_dropout, dropout_unscaled)[0].lines
        assert run_check(capsys, check_dropout, dropout_unscaled)[0].lines == first


def dropout_mentioning_the_library(x, keep_prob, training=True):
    # F.dropout(x, 1 - keep_prob) would do this; the exercise is to write it
    return dropout_rewrite(x, keep_prob, training)


def dropout_bernoulli(x, keep_prob, training=True):
    # another algorithm: torch.bernoulli draws the mask (not nn.Dropout / F.dropout)
    if not training:
        return x
    return x * torch.bernoulli(torch.full_like(x, keep_prob)) / keep_prob


def dropout_non_contiguous_safe(x, keep_prob, training=True):
    if not training or keep_prob == 1:
        return x
    mask = torch.empty_like(x).uniform_() < keep_prob
    return torch.where(mask, x / keep_prob, torch.zeros_like(x))


def dropout_in_place(x, keep_prob, training=True):
    if not training:
        return x
    mask = torch.rand_like(x) < keep_prob
    with torch.no_grad():
        x.mul_(1.0)  # the values stay, but the caller's tensor was written to
    return x * mask / keep_prob


def dropout_fixed_seed(x, keep_prob, training=True):
    if not training:
        return x
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(x.shape, generator=gen, dtype=x.dtype) < keep_prob
    return x * mask / keep_prob


_OWN = torch.Generator().manual_seed(5)


def dropout_own_generator(x, keep_prob, training=True):
    if not training:
        return x
    mask = torch.rand(x.shape, generator=_OWN, dtype=x.dtype) < keep_prob
    return x * mask / keep_prob


def dropout_exact_count(x, keep_prob, training=True):
    """Keeps exactly round(keep_prob * n) units of each sample (a permutation, not Bernoulli)."""
    if not training or keep_prob == 1:
        return x
    flat = x.reshape(x.shape[0], -1)
    k = round(keep_prob * flat.shape[1])
    order = torch.rand_like(flat).argsort(dim=1)
    mask = (order < k).to(x.dtype)
    return (flat * mask / keep_prob).reshape(x.shape)


def dropout_default_eval(x, keep_prob, training=False):
    return dropout_rewrite(x, keep_prob, training)


def dropout_gradient_unscaled(x, keep_prob, training=True):
    if not training:
        return x
    mask = (torch.rand_like(x) < keep_prob).to(x.dtype)
    out = x * mask
    with torch.no_grad():
        scale = out / keep_prob - out  # the forward value right, the 1/keep_prob out of the graph
    return out + scale


class TestDropoutIssue17:
    @pytest.mark.parametrize(
        "answer", [dropout_bernoulli, dropout_non_contiguous_safe, dropout_mentioning_the_library]
    )
    def test_correct_but_unusual_answers_pass(self, answer, capsys):
        assert_pass_lines(run_check(capsys, check_dropout, answer, hidden=True)[0])

    def test_editing_x_in_place_fails(self, capsys):
        assert_fail_lines(run_check(capsys, check_dropout, dropout_in_place)[0], IN_PLACE + " (x)")

    def test_fixed_seed_inside_fails(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_dropout, dropout_fixed_seed)[0])
        assert "different torch.manual_seed values gave the same mask" in text

    def test_own_generator_fails_reproducibility(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_dropout, dropout_own_generator)[0])
        assert "the same torch.manual_seed gave different masks" in text
        assert "different torch.manual_seed values" not in text  # it does vary between calls

    def test_exact_count_per_sample_fails(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_dropout, dropout_exact_count)[0])
        assert "keep each unit independently" in text

    def test_training_default_false_fails(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_dropout, dropout_default_eval)[0])
        assert "training left at its default (True)" in text
        assert len(text.splitlines()) == 1

    def test_gradient_missing_the_scale_fails(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_dropout, dropout_gradient_unscaled)[0])
        assert "misses the 1/keep_prob factor" in text and "at index" in text

    def test_kept_fraction_tolerance_has_the_stated_false_alarm_rate(self):
        from statistics import NormalDist

        from course_utils.checks.dropout import FALSE_ALARM, _kept_fraction_tolerance

        count, p = 10**6, 0.5
        z = _kept_fraction_tolerance(p, count) / (p * (1 - p) / count) ** 0.5
        assert 2 * (1 - NormalDist().cdf(z)) <= FALSE_ALARM
