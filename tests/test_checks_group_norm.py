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
    GRADIENT,
    IN_PLACE,
    assert_fail_lines,
    assert_pass_lines,
    not_implemented,
    run_check,
)


def _affine(
    y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None
) -> torch.Tensor:
    shape = (1, y.shape[1]) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


def gn_rewrite(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    mean = grouped.mean(-1, keepdim=True)
    var = ((grouped - mean) ** 2).mean(-1, keepdim=True)
    y = ((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _affine(y, weight, bias)


def gn_batch_stats(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=(0, 2), correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_layer_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    flat = x.reshape(x.shape[0], -1)
    var, mean = torch.var_mean(flat, dim=1, correction=0, keepdim=True)
    return _affine(((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_instance_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    var, mean = torch.var_mean(flat, dim=2, correction=0, keepdim=True)
    return _affine(((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_interleaved(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.reshape(n, c // num_groups, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=(1, 3), correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_unbiased(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, keepdim=True)  # correction=1
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


def gn_eps_outside(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    return _affine(((grouped - mean) / (torch.sqrt(var) + eps)).reshape(x.shape), weight, bias)


def gn_per_group_affine(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    y = (grouped - mean) / torch.sqrt(var + eps)
    y = y * weight[:num_groups].view(1, -1, 1) + bias[:num_groups].view(1, -1, 1)
    return y.reshape(x.shape)


def gn_cpu_constant(x, num_groups, weight=None, bias=None, eps=1e-5):
    ones = torch.ones(x.shape[1])  # no device=: breaks on GPU and meta
    return gn_rewrite(x, num_groups, ones if weight is None else weight * ones, bias, eps)


def gn_view(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[:2]
    grouped = x.view(n, num_groups, -1)
    var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).view(x.shape), weight, bias)


def gn_calls_torch(x, num_groups, weight=None, bias=None, eps=1e-5):
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


def gn_mentioning_the_library(x, num_groups, weight=None, bias=None, eps=1e-5):
    # the same numbers as F.group_norm(x, num_groups, weight, bias, eps), written by hand
    note = "not nn.GroupNorm(...) nor torch.group_norm(...)"  # noqa: F841
    group_norm = gn_rewrite  # a local name that happens to be the library's
    return group_norm(x, num_groups, weight, bias, eps)


def gn_detached_statistics(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    with torch.no_grad():  # right values, but autograd misses how mean and var depend on x
        var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
    return _affine(((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape), weight, bias)


class _GroupNormWithoutMeanTerm(torch.autograd.Function):
    """A hand-written backward that forgets the terms through the mean and the variance."""

    @staticmethod
    def forward(ctx, grouped, eps):
        var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
        inv = 1 / torch.sqrt(var + eps)
        ctx.save_for_backward(inv)
        return (grouped - mean) * inv

    @staticmethod
    def backward(ctx, dy):
        (inv,) = ctx.saved_tensors
        return dy * inv, None


def gn_wrong_backward(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    return _affine(_GroupNormWithoutMeanTerm.apply(grouped, eps).reshape(x.shape), weight, bias)


class _GroupNormFunction(torch.autograd.Function):
    """A correct hand-written backward: dx = inv * (dy - mean(dy) - x_hat * mean(dy * x_hat))."""

    @staticmethod
    def forward(ctx, grouped, eps):
        var, mean = torch.var_mean(grouped, dim=2, correction=0, keepdim=True)
        inv = 1 / torch.sqrt(var + eps)
        x_hat = (grouped - mean) * inv
        ctx.save_for_backward(x_hat, inv)
        return x_hat

    @staticmethod
    def backward(ctx, dy):
        x_hat, inv = ctx.saved_tensors
        mean_dy = dy.mean(2, keepdim=True)
        mean_dy_xhat = (dy * x_hat).mean(2, keepdim=True)
        return inv * (dy - mean_dy - x_hat * mean_dy_xhat), None


def gn_own_backward(x, num_groups, weight=None, bias=None, eps=1e-5):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    return _affine(_GroupNormFunction.apply(grouped, eps).reshape(x.shape), weight, bias)


def gn_loop_over_groups(x, num_groups, weight=None, bias=None, eps=1e-5):
    # another algorithm: one slice of consecutive channels at a time (F.group_norm does it at once)
    size = x.shape[1] // num_groups
    parts = []
    for g in range(num_groups):
        part = x[:, g * size : (g + 1) * size]
        dims = tuple(range(1, x.ndim))
        mean = part.mean(dim=dims, keepdim=True)
        var = ((part - mean) ** 2).mean(dim=dims, keepdim=True)
        parts.append((part - mean) / (var + eps).sqrt())
    return _affine(torch.cat(parts, dim=1), weight, bias)


def gn_in_place(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = gn_rewrite(x, num_groups, weight, bias, eps)
    with torch.no_grad():
        x.mul_(1.0)  # same values, but the caller's tensor was written to
    return y


def gn_weight_needs_bias(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = gn_rewrite(x, num_groups, None, None, eps)
    if weight is not None and bias is not None:
        y = _affine(y, weight, bias)
    return y


def gn_affine_required(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = gn_rewrite(x, num_groups, None, None, eps)
    return _affine(y, weight, torch.zeros_like(bias)) + bias.reshape((1, -1) + (1,) * (x.ndim - 2))


def gn_eps_ignored(x, num_groups, weight=None, bias=None, eps=1e-5):
    return gn_rewrite(x, num_groups, weight, bias, 1e-5)


def gn_first_512_rows(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = gn_rewrite(x, num_groups, weight, bias, eps)
    return torch.cat([y[:512], y[512:] * 0.999]) if x.shape[0] > 512 else y


def gn_off_by_little(x, num_groups, weight=None, bias=None, eps=1e-5):
    y = gn_rewrite(x, num_groups, weight, bias, eps)
    bump = torch.zeros_like(y).reshape(-1)
    bump[-1] = 2e-3
    return y + bump.reshape(y.shape)


def gn_returns_nothing(x, num_groups, weight=None, bias=None, eps=1e-5):
    gn_rewrite(x, num_groups, weight, bias, eps)


class TestGroupNormIssue17:
    """Gradients, inputs untouched, every argument, hints only on identifying evidence."""

    @pytest.mark.parametrize(
        "answer", [gn_own_backward, gn_loop_over_groups, gn_mentioning_the_library]
    )
    def test_correct_but_unusual_answers_pass(self, answer, capsys):
        assert_pass_lines(run_check(capsys, check_group_norm, answer, hidden=True)[0])

    def test_float64_reference_passes(self, capsys):
        composed = functools.partial(ref_layers.group_norm, fused=False)
        assert_pass_lines(run_check(capsys, check_group_norm, composed)[0])

    @pytest.mark.parametrize("answer", [gn_detached_statistics, gn_wrong_backward])
    def test_wrong_gradient_with_right_values_fails(self, answer, capsys):
        text = assert_fail_lines(run_check(capsys, check_group_norm, answer)[0], GRADIENT)
        assert "gradient of x at index" in text
        assert "Looks like" not in text  # the values are right: no value hint

    def test_editing_x_in_place_fails(self, capsys):
        assert_fail_lines(run_check(capsys, check_group_norm, gn_in_place)[0], IN_PLACE + " (x)")

    def test_bias_ignored_without_weight_fails_with_its_hint(self, capsys):
        result = run_check(capsys, check_group_norm, gn_weight_needs_bias)[0]
        text = assert_fail_lines(result, "weight ignored when bias is None", "bias ignored")
        assert "weight and bias left at their defaults" not in text  # that case is right

    def test_none_affine_not_handled_fails_with_its_hint(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_group_norm, gn_affine_required)[0], "weight=None or bias=None"
        )

    def test_ignored_eps_fails(self, capsys):
        assert_fail_lines(run_check(capsys, check_group_norm, gn_eps_ignored)[0], "eps=0.05")

    def test_error_past_512_rows_names_the_index(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_group_norm, gn_first_512_rows)[0])
        assert "more than 512" in text and "at index (5" in text

    def test_small_error_prints_distinct_values_and_where(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_group_norm, gn_off_by_little)[0])
        line = text.splitlines()[0]
        assert "at index" in line and "elements differ" in line
        expected = line.split("expected ")[1].split(",")[0]
        got = line.split("got ")[1].split(";")[0]
        assert expected != got

    def test_returning_none_says_so(self, capsys):
        text = assert_fail_lines(
            run_check(capsys, check_group_norm, gn_returns_nothing)[0], "returned None"
        )
        assert "shape ()" not in text
