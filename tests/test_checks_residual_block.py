"""Tests of ``check_residual_block`` (course_utils/checks/residual_block.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import layers as ref_layers
from course_utils.checks.residual_block import check_residual_block
from tests.check_helpers import (
    DEVICE_HINT_START,
    GRADIENT,
    IN_PLACE,
    assert_fail_lines,
    assert_pass_lines,
    run_check,
)


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
        assert_pass_lines(run_check(capsys, check_residual_block, ref_layers.ResidualBlock)[0])

    def test_rewrite_with_other_names_and_order_passes_hidden(self, capsys):
        assert_pass_lines(run_check(capsys, check_residual_block, BlockRewrite, hidden=True)[0])

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
        assert_fail_lines(run_check(capsys, check_residual_block, answer)[0], needle)

    def test_missing_projection_is_named_in_the_parameter_count_too(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_residual_block, BlockNoProjection)[0], "no projection"
        )

    def test_not_implemented(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_residual_block, BlockNotImplemented)[0], "not implemented yet"
        )

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = run_check(capsys, check_residual_block, BlockCpuTensor)[0]
        assert_fail_lines(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_wrapping_torchvision_fails_hidden_only(self, capsys):
        assert_pass_lines(run_check(capsys, check_residual_block, BlockWrapsTorchvision)[0])
        assert_fail_lines(
            run_check(capsys, check_residual_block, BlockWrapsTorchvision, hidden=True)[0],
            "BasicBlock",
        )


class BlockDetachedShortcut(BlockRewrite):
    """Right values, but no gradient flows along the skip path."""

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x).detach())


class BlockInPlaceOnX(BlockRewrite):
    def forward(self, x):
        out = self.branch(x) + self.shortcut(x)
        with torch.no_grad():
            x.mul_(1.0)  # values kept, the caller's tensor written to
        return F.relu(out)


class BlockFloat64Friendly(BlockRewrite):
    """Correct; the ReLU as clamp(min=0) and the sum through torch.add (another way to write it)."""

    def forward(self, x):
        return torch.add(self.branch(x), self.shortcut(x)).clamp(min=0)


class BlockStrideRequired(BlockRewrite):
    def __init__(self, in_channels, out_channels, stride):  # no default stride
        super().__init__(in_channels, out_channels, stride)


class TestResidualBlockIssue17:
    def test_another_correct_form_passes(self, capsys):
        assert_pass_lines(run_check(capsys, check_residual_block, BlockFloat64Friendly, True)[0])

    def test_detached_shortcut_fails_on_the_gradient(self, capsys):
        text = assert_fail_lines(
            run_check(capsys, check_residual_block, BlockDetachedShortcut)[0], GRADIENT
        )
        assert "gradient of x at index" in text

    def test_writing_to_x_fails(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_residual_block, BlockInPlaceOnX)[0], IN_PLACE + " (x)"
        )

    def test_stride_default_is_exercised(self, capsys):
        text = assert_fail_lines(run_check(capsys, check_residual_block, BlockStrideRequired)[0])
        assert "stride left at its default 1" in text and len(text.splitlines()) == 1
