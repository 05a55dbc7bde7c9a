"""The layer checks pass the reference and correct rewrites, and name each classic bug."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import init as ref_init
from course_utils import layers as ref_layers
from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.checks.layers import (
    check_dropout,
    check_final_bias_init,
    check_group_norm,
    check_lstm_forget_bias,
    check_residual_block,
)

DEVICE_HINT_START = WRONG_DEVICE_HINT[:40]


def _run(check: Callable[..., Any], answer: Any, capsys: pytest.CaptureFixture[str], **kw: Any):
    result = check(answer, **kw)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines() == result.lines
    return result


def _assert_pass(result: Any) -> None:
    assert result.passed, "\n".join(result.lines)
    assert len(result.lines) == 1 and result.lines[0].startswith("PASS ")


def _assert_fail(result: Any, needle: str) -> None:
    assert not result.passed
    assert all(line.startswith("FAIL ") for line in result.lines)
    text = "\n".join(result.lines)
    assert needle in text, text


# ----------------------------------------------------------------------------------------------------
# Group norm answers
# ----------------------------------------------------------------------------------------------------


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


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


class TestCheckGroupNorm:
    def test_reference_passes_visible_and_hidden(self, capsys):
        composed = functools.partial(ref_layers.group_norm, fused=False)
        # fused=None: the fused kernel on the CPU, the composed ops on meta
        _assert_pass(_run(check_group_norm, ref_layers.group_norm, capsys))
        _assert_pass(_run(check_group_norm, composed, capsys))
        # Hidden: the composed path; the fused one calls course_utils.group_norm_cpu, see below.
        _assert_pass(_run(check_group_norm, composed, capsys, hidden=True))

    def test_hidden_check_catches_the_reference_called_under_another_name(self, capsys):
        """``from course_utils.layers import group_norm as gn`` escapes the source scan (the
        answer's text has no ``group_norm(`` call) and the layers tripwire (gn is bound before it
        is set); on the CPU the reference runs the fused kernel, whose tripwire catches it."""
        gn = ref_layers.group_norm

        def answer(x, num_groups, weight=None, bias=None, eps=1e-5):
            return gn(x, num_groups, weight, bias, eps)

        _assert_pass(_run(check_group_norm, answer, capsys))
        result = _run(check_group_norm, answer, capsys, hidden=True)
        _assert_fail(result, "course_utils.group_norm_cpu.fused_group_norm")

    def test_rewrite_with_mean_and_squared_deviation_passes(self, capsys):
        _assert_pass(_run(check_group_norm, gn_rewrite, capsys, hidden=True))

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
        _assert_fail(_run(check_group_norm, answer, capsys), needle)

    def test_not_implemented(self, capsys):
        _assert_fail(_run(check_group_norm, not_implemented, capsys), "not implemented yet")

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = _run(check_group_norm, gn_cpu_constant, capsys)
        _assert_fail(result, DEVICE_HINT_START)
        assert len(result.lines) == 1  # correct everywhere else

    def test_view_on_non_contiguous_input_fails_hidden_with_reshape_hint(self, capsys):
        _assert_pass(_run(check_group_norm, gn_view, capsys))
        _assert_fail(_run(check_group_norm, gn_view, capsys, hidden=True), "use x.reshape")

    def test_calling_the_library_fails_hidden_only(self, capsys):
        _assert_pass(_run(check_group_norm, gn_calls_torch, capsys))
        result = _run(check_group_norm, gn_calls_torch, capsys, hidden=True)
        _assert_fail(result, "torch.nn.functional.group_norm")
        _assert_fail(result, "ReferenceCalled")


# ----------------------------------------------------------------------------------------------------
# Dropout answers
# ----------------------------------------------------------------------------------------------------


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
        _assert_pass(_run(check_dropout, ref_layers.dropout, capsys))

    def test_rewrite_with_rand_like_passes_hidden(self, capsys):
        _assert_pass(_run(check_dropout, dropout_rewrite, capsys, hidden=True))

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
        _assert_fail(_run(check_dropout, answer, capsys), needle)

    def test_not_implemented(self, capsys):
        _assert_fail(_run(check_dropout, not_implemented, capsys), "not implemented yet")

    def test_cpu_mask_fails_with_device_hint(self, capsys):
        result = _run(check_dropout, dropout_cpu_mask, capsys)
        _assert_fail(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_library_fails_hidden_only(self, capsys):
        _assert_pass(_run(check_dropout, dropout_calls_torch, capsys))
        _assert_fail(
            _run(check_dropout, dropout_calls_torch, capsys, hidden=True),
            "torch.nn.functional.dropout",
        )

    def test_leaves_the_global_rng_untouched(self, capsys):
        torch.manual_seed(0)
        expected = torch.rand(3)
        torch.manual_seed(0)
        _run(check_dropout, dropout_rewrite, capsys)
        assert torch.equal(torch.rand(3), expected)

    def test_is_deterministic(self, capsys):
        first = _run(check_dropout, dropout_unscaled, capsys).lines
        assert _run(check_dropout, dropout_unscaled, capsys).lines == first


# ----------------------------------------------------------------------------------------------------
# Residual block answers
# ----------------------------------------------------------------------------------------------------


class BlockRewrite(nn.Module):
    """Correct, but named and ordered differently from torchvision (shortcut built first)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))


class BlockNoSkip(BlockRewrite):
    def forward(self, x):
        return F.relu(self.branch(x))


class BlockReluBeforeAdd(BlockRewrite):
    def forward(self, x):
        return F.relu(self.branch(x)) + self.shortcut(x)


class BlockNoFinalRelu(BlockRewrite):
    def forward(self, x):
        return self.branch(x) + self.shortcut(x)


class BlockNoProjection(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


class BlockConvBias(BlockRewrite):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.branch[0] = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=True)
        self.branch[3] = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=True)


class BlockCpuTensor(BlockRewrite):
    def forward(self, x):
        out = self.branch(x) + self.shortcut(x)
        return torch.maximum(out, torch.zeros(out.shape))  # no device=


class BlockNotImplemented(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        raise NotImplementedError()


class BlockWrapsTorchvision(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.block = BasicBlock(in_channels, out_channels, stride, downsample)

    def forward(self, x):
        return self.block(x)


class TestCheckResidualBlock:
    def test_reference_passes(self, capsys):
        _assert_pass(_run(check_residual_block, ref_layers.ResidualBlock, capsys))

    def test_rewrite_with_other_names_and_order_passes_hidden(self, capsys):
        _assert_pass(_run(check_residual_block, BlockRewrite, capsys, hidden=True))

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (BlockNoSkip, "no skip connection"),
            (BlockReluBeforeAdd, "added after the final ReLU"),
            (BlockNoFinalRelu, "no ReLU after the addition"),
            (BlockNoProjection, "needs a projection"),
            (BlockConvBias, "bias=True"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        _assert_fail(_run(check_residual_block, answer, capsys), needle)

    def test_missing_projection_is_named_in_the_parameter_count_too(self, capsys):
        _assert_fail(_run(check_residual_block, BlockNoProjection, capsys), "no projection")

    def test_not_implemented(self, capsys):
        _assert_fail(_run(check_residual_block, BlockNotImplemented, capsys), "not implemented yet")

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = _run(check_residual_block, BlockCpuTensor, capsys)
        _assert_fail(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_wrapping_torchvision_fails_hidden_only(self, capsys):
        _assert_pass(_run(check_residual_block, BlockWrapsTorchvision, capsys))
        _assert_fail(
            _run(check_residual_block, BlockWrapsTorchvision, capsys, hidden=True), "BasicBlock"
        )


# ----------------------------------------------------------------------------------------------------
# LSTM forget-bias answers
# ----------------------------------------------------------------------------------------------------


def forget_rewrite(lstm, value=1.0):
    """Correct: moves all of bias_hh into bias_ih, then sets the forget slice."""
    hidden = lstm.hidden_size
    params = dict(lstm.named_parameters())
    with torch.no_grad():
        for name, b_ih in params.items():
            if name.startswith("bias_ih"):
                b_hh = params[name.replace("bias_ih", "bias_hh")]
                b_ih.add_(b_hh)
                b_hh.zero_()
                b_ih[hidden : 2 * hidden] = value
    return lstm


def _fill(lstm, value, rows, vectors=("bias_ih",), keep=lambda name: True):
    hidden = lstm.hidden_size
    start, stop = rows
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if not keep(name):
                continue
            if name.startswith(vectors):
                p[start * hidden : stop * hidden] = value
            elif name.startswith("bias_hh"):
                p[start * hidden : stop * hidden] = 0.0


def forget_both_filled(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if "bias" in name:
                p[hidden : 2 * hidden].fill_(value)


def forget_input_slice(lstm, value=1.0):
    _fill(lstm, value, (0, 1))


def forget_cell_slice(lstm, value=1.0):
    _fill(lstm, value, (2, 3))


def forget_first_layer_only(lstm, value=1.0):
    _fill(lstm, value, (1, 2), keep=lambda name: name.endswith(("l0", "l0_reverse")))


def forget_forward_only(lstm, value=1.0):
    _fill(lstm, value, (1, 2), keep=lambda name: "reverse" not in name)


def forget_zero_other_gates(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p.zero_()
                p[hidden : 2 * hidden].fill_(value)
            elif name.startswith("bias_hh"):
                p.zero_()


def forget_without_no_grad(lstm, value=1.0):
    hidden = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            p[hidden : 2 * hidden] = value
        elif name.startswith("bias_hh"):
            p[hidden : 2 * hidden] = 0.0


def forget_cpu_tensor(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p.copy_(torch.cat([p[:hidden], torch.full((hidden,), value), p[2 * hidden :]]))
            elif name.startswith("bias_hh"):
                p[hidden : 2 * hidden] = 0.0
    return lstm


def forget_calls_reference(lstm, value=1.0):
    ref_init.set_lstm_forget_bias(lstm, value)


class TestCheckLstmForgetBias:
    def test_reference_passes_visible_and_hidden(self, capsys):
        _assert_pass(_run(check_lstm_forget_bias, ref_init.set_lstm_forget_bias, capsys))
        _assert_pass(
            _run(check_lstm_forget_bias, ref_init.set_lstm_forget_bias, capsys, hidden=True)
        )

    def test_rewrite_that_merges_both_biases_passes_hidden(self, capsys):
        _assert_pass(_run(check_lstm_forget_bias, forget_rewrite, capsys, hidden=True))

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (forget_both_filled, "both bias_ih and bias_hh were filled"),
            (forget_input_slice, "input gate's slice [0H:1H]"),
            (forget_cell_slice, "cell (g) gate's slice [2H:3H]"),
            (forget_first_layer_only, "only the first layer"),
            (forget_forward_only, "only the forward direction"),
            (forget_zero_other_gates, "(zeroed)"),
            (forget_without_no_grad, "torch.no_grad()"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        _assert_fail(_run(check_lstm_forget_bias, answer, capsys), needle)

    def test_not_implemented(self, capsys):
        _assert_fail(_run(check_lstm_forget_bias, not_implemented, capsys), "not implemented yet")

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = _run(check_lstm_forget_bias, forget_cpu_tensor, capsys)
        _assert_fail(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_reference_fails_hidden(self, capsys):
        _assert_fail(
            _run(check_lstm_forget_bias, forget_calls_reference, capsys, hidden=True),
            "set_lstm_forget_bias",
        )


# ----------------------------------------------------------------------------------------------------
# Final-bias answers
# ----------------------------------------------------------------------------------------------------


def final_bias_reference(layer, priors):
    return ref_init.init_final_bias_from_priors(layer, priors, weight_scale=0.01)


def final_bias_rewrite(layer, priors):
    with torch.no_grad():
        p = torch.as_tensor(priors, dtype=layer.bias.dtype, device=layer.bias.device)
        if layer.out_features == 1:
            layer.bias.fill_(0.0).add_(torch.log(p / (1 - p)))
        else:
            layer.bias.copy_(torch.log(p / p.sum()))
        layer.weight.zero_()
    return layer


def _bias_answer(formula):
    def answer(layer, priors):
        with torch.no_grad():
            p = torch.as_tensor(priors, dtype=torch.float64)
            layer.bias.copy_(formula(p))
            layer.weight.mul_(0.01)

    return answer


final_bias_log10 = _bias_answer(lambda p: torch.log10(p / p.sum()))
final_bias_logit = _bias_answer(lambda p: torch.log((p / p.sum()) / (1 - p / p.sum())))
final_bias_unnormalised = _bias_answer(torch.log)
final_bias_binary_log = _bias_answer(torch.log)


def final_bias_weights_untouched(layer, priors):
    with torch.no_grad():
        p = torch.as_tensor(priors, dtype=torch.float64)
        layer.bias.copy_(torch.log(p / p.sum()))


def final_bias_cpu_data(layer, priors):
    p = torch.as_tensor(priors, dtype=torch.float32)
    layer.bias.data = torch.log(p / p.sum())  # replaces the storage with a CPU tensor
    layer.weight.data.mul_(0.0)
    return layer


def final_bias_calls_reference(layer, priors):
    ref_init.init_final_bias_from_priors(layer, priors, weight_scale=0.0)


class TestCheckFinalBiasInit:
    def test_reference_passes_visible_and_hidden_with_binary(self, capsys):
        _assert_pass(_run(check_final_bias_init, final_bias_reference, capsys))
        _assert_pass(_run(check_final_bias_init, final_bias_rewrite, capsys, binary=True))

    def test_rewrite_passes_hidden(self, capsys):
        _assert_pass(_run(check_final_bias_init, final_bias_rewrite, capsys, hidden=True))

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (final_bias_log10, "log10 instead of the natural log"),
            (final_bias_logit, "binary logit ln(p/(1-p)) used for a softmax layer"),
            (final_bias_unnormalised, "priors were not normalised"),
            (final_bias_weights_untouched, "weights left at their default scale"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        _assert_fail(_run(check_final_bias_init, answer, capsys), needle)

    def test_multiclass_formula_on_a_single_logit_is_named(self, capsys):
        _assert_fail(
            _run(check_final_bias_init, final_bias_binary_log, capsys, binary=True),
            "ln π used for a single sigmoid logit",
        )

    def test_not_implemented(self, capsys):
        _assert_fail(_run(check_final_bias_init, not_implemented, capsys), "not implemented yet")

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = _run(check_final_bias_init, final_bias_cpu_data, capsys)
        _assert_fail(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_reference_fails_hidden(self, capsys):
        _assert_fail(
            _run(check_final_bias_init, final_bias_calls_reference, capsys, hidden=True),
            "init_final_bias_from_priors",
        )


def test_checks_restore_the_thread_count(capsys):
    threads = torch.get_num_threads()
    _run(check_group_norm, gn_rewrite, capsys)
    assert torch.get_num_threads() == threads


# --- contracts: the same parameter objects, the module returned ------------------------------------

REPLACED = "replaced by new tensors"
NOT_RETURNED = "should return the module it was given"


def final_bias_new_parameter(layer, priors):
    p = torch.as_tensor(priors, dtype=layer.bias.dtype)
    layer.bias = nn.Parameter(
        torch.log(p / p.sum())
    )  # an optimizer built earlier keeps the old one
    with torch.no_grad():
        layer.weight.mul_(0.01)
    return layer


def final_bias_no_return(layer, priors):
    final_bias_reference(layer, priors)


def forget_new_parameters(lstm, value=1.0):
    hidden = lstm.hidden_size
    for name, param in list(lstm.named_parameters()):
        if name.startswith(("bias_ih", "bias_hh")):
            fresh = param.detach().clone()
            fresh[hidden : 2 * hidden] = value if name.startswith("bias_ih") else 0.0
            setattr(lstm, name, nn.Parameter(fresh))
    return lstm


def forget_no_return(lstm, value=1.0):
    ref_init.set_lstm_forget_bias(lstm, value)


@pytest.mark.parametrize(
    ("check", "answer", "needle"),
    [
        (check_final_bias_init, final_bias_new_parameter, f"bias {REPLACED}"),
        (check_final_bias_init, final_bias_no_return, NOT_RETURNED),
        (check_lstm_forget_bias, forget_new_parameters, REPLACED),
        (check_lstm_forget_bias, forget_no_return, NOT_RETURNED),
    ],
)
def test_an_init_that_breaks_its_contract_fails(check, answer, needle, capsys):
    _assert_fail(_run(check, answer, capsys), needle)


# --- the library's name in a comment, a string or a variable is not a call --------------------------


def gn_mentioning_the_library(x, num_groups, weight, bias, eps=1e-5):
    # the same numbers as F.group_norm(x, num_groups, weight, bias, eps), written by hand
    note = "not nn.GroupNorm(...) nor torch.group_norm(...)"  # noqa: F841
    group_norm = gn_rewrite  # a local name that happens to be the library's
    return group_norm(x, num_groups, weight, bias, eps)


def dropout_mentioning_the_library(x, keep_prob, training=True):
    # F.dropout(x, 1 - keep_prob) would do this; the exercise is to write it
    return dropout_rewrite(x, keep_prob, training)


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        (check_group_norm, gn_mentioning_the_library),
        (check_dropout, dropout_mentioning_the_library),
    ],
)
def test_an_answer_that_only_mentions_the_library_passes_hidden(check, answer, capsys):
    _assert_pass(_run(check, answer, capsys, hidden=True))
