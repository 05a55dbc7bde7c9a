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
