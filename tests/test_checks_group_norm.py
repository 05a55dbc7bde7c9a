"""Tests of ``check_group_norm`` (course_utils/checks/group_norm.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from course_utils import layers as ref_layers
from course_utils.checks.group_norm import check_group_norm
from tests.check_helpers import (
    DEVICE_HINT_START,
    assert_fail_lines,
    assert_pass_lines,
    not_implemented,
    run_check,
)


def _affine(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    shape = (1, y.shape[1]) + (1,) * (y.ndim - 2)
    return y * weight.reshape(shape) + bias.reshape(shape)


def gn_rewrite(x, num_groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    mean = grouped.mean(-1, keepdim=True)
    var = ((grouped - mean) ** 2).mean(-1, keepdim=True)
    y = ((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _affine(y, weight, bias)


def gn_batch_stats(x, num_groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=(0, 2), correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_layer_norm(x, num_groups, weight, bias, eps=1e-5):
    flat = x.reshape(x.shape[0], -1)
    var, mean = torch.var_mean(flat, dim=1, correction=0, keepdim=True)
    return _affine(((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_instance_norm(x, num_groups, weight, bias, eps=1e-5):
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    var, mean = torch.var_mean(flat, dim=2, correction=0, keepdim=True)
    return _affine(((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_interleaved(x, num_groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, c // num_groups, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=(1, 3), correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_unbiased(x, num_groups, weight, bias, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, keepdim=True)  # correction=1
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_eps_outside(x, num_groups, weight, bias, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    return _affine(((grouped - mean) / (torch.sqrt(var) + eps)).reshape(x.shape), weight, bias)


def gn_per_group_affine(x, num_groups, weight, bias, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    y = (grouped - mean) / torch.sqrt(var + eps)
    y = y * weight[:num_groups].view(1, -1, 1) + bias[:num_groups].view(1, -1, 1)
    return y.reshape(x.shape)


def gn_cpu_constant(x, num_groups, weight, bias, eps=1e-5):
    ones = torch.ones(x.shape[1])  # no device=: breaks on GPU and meta
    return gn_rewrite(x, num_groups, weight * ones, bias, eps)


def gn_view(x, num_groups, weight, bias, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.view(n, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).view(x.shape), weight, bias)


def gn_calls_torch(x, num_groups, weight, bias, eps=1e-5):
    return F.group_norm(x, num_groups, weight, bias, eps)


class TestCheckGroupNorm:
    def test_reference_passes_visible_and_hidden(self, capsys):
        composed = functools.partial(ref_layers.group_norm, fused=False)
        # fused=None: the fused kernel on the CPU, the composed ops on meta
        assert_pass_lines(run_check(capsys, check_group_norm, ref_layers.group_norm)[0])
        assert_pass_lines(run_check(capsys, check_group_norm, composed)[0])
        # Hidden: the composed path; the fused one calls course_utils.group_norm_cpu, see below.
        assert_pass_lines(run_check(capsys, check_group_norm, composed, hidden=True)[0])

    def test_hidden_check_catches_the_reference_called_under_another_name(self, capsys):
        """``from course_utils.layers import group_norm as gn`` escapes the source scan (the
        answer's text has no ``group_norm(`` call) and the layers tripwire (gn is bound before it
        is set); on the CPU the reference runs the fused kernel, whose tripwire catches it."""
        gn = ref_layers.group_norm

        def answer(x, num_groups, weight=None, bias=None, eps=1e-5):
            return gn(x, num_groups, weight, bias, eps)

        assert_pass_lines(run_check(capsys, check_group_norm, answer)[0])
        result = run_check(capsys, check_group_norm, answer, hidden=True)[0]
        assert_fail_lines(result, "course_utils.group_norm_cpu.fused_group_norm")

    def test_rewrite_with_mean_and_squared_deviation_passes(self, capsys):
        assert_pass_lines(run_check(capsys, check_group_norm, gn_rewrite, hidden=True)[0])

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (gn_batch_stats, "over the batch axis too"),
            (gn_layer_norm, "(layer norm)"),
            (gn_instance_norm, "(instance norm)"),
            (gn_interleaved, "c % G"),
            (gn_unbiased, "unbiased variance"),
            (gn_eps_outside, "eps added outside the square root"),
            (gn_per_group_affine, "per-group affine"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        assert_fail_lines(run_check(capsys, check_group_norm, answer)[0], needle)

    def test_not_implemented(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_group_norm, not_implemented)[0], "not implemented yet"
        )

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = run_check(capsys, check_group_norm, gn_cpu_constant)[0]
        assert_fail_lines(result, DEVICE_HINT_START)
        assert len(result.lines) == 1  # correct everywhere else

    def test_view_on_non_contiguous_input_fails_hidden_with_reshape_hint(self, capsys):
        assert_pass_lines(run_check(capsys, check_group_norm, gn_view)[0])
        assert_fail_lines(
            run_check(capsys, check_group_norm, gn_view, hidden=True)[0], "use x.reshape"
        )

    def test_calling_the_library_fails_hidden_only(self, capsys):
        assert_pass_lines(run_check(capsys, check_group_norm, gn_calls_torch)[0])
        result = run_check(capsys, check_group_norm, gn_calls_torch, hidden=True)[0]
        assert_fail_lines(result, "torch.nn.functional.group_norm")
        assert_fail_lines(result, "ReferenceCalled")


def test_checks_restore_the_thread_count(capsys):
    threads = torch.get_num_threads()
    run_check(capsys, check_group_norm, gn_rewrite)[0]
    assert torch.get_num_threads() == threads


def gn_mentioning_the_library(x, num_groups, weight, bias, eps=1e-5):
    # the same numbers as F.group_norm(x, num_groups, weight, bias, eps), written by hand
    note = "not nn.GroupNorm(...) nor torch.group_norm(...)"  # noqa: F841
    group_norm = gn_rewrite  # a local name that happens to be the library's
    return group_norm(x, num_groups, weight, bias, eps)
