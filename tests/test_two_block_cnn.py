"""course_utils.two_block_cnn: the heads differ only in how the maps become a vector."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.layers import Dropout2d
from course_utils.two_block_cnn import linear_params, n_params, two_block_cnn


def test_shapes_and_parameter_counts_follow_the_formula() -> None:
    fc, gap = two_block_cnn(head="fc"), two_block_cnn(head="gap")
    x = torch.rand(3, 1, 28, 28)
    assert fc(x).shape == gap(x).shape == (3, 10)
    conv = 1 * 8 * 25 + 2 * 8 + 8 * 16 * 9 + 2 * 16  # convs (no bias) and BN affine
    assert n_params(fc) == conv + (16 * 7 * 7 * 128 + 128) + (128 * 10 + 10)
    assert n_params(gap) == conv + (16 * 128 + 128) + (128 * 10 + 10)
    assert n_params(fc) - linear_params(fc) == n_params(gap) - linear_params(gap) == conv


def test_same_seed_same_trunk_and_the_same_depth() -> None:
    fc, gap = two_block_cnn(head="fc", seed=3), two_block_cnn(head="gap", seed=3)
    assert torch.equal(fc[0].weight, gap[0].weight)
    assert torch.equal(fc[4].weight, gap[4].weight)
    kinds = lambda m: [type(x).__name__ for x in m if not isinstance(x, nn.AdaptiveAvgPool2d)]  # noqa: E731
    assert kinds(fc) == kinds(gap)
    assert not torch.equal(two_block_cnn(seed=4)[0].weight, fc[0].weight)


def test_dropout_and_input_shape_and_bad_head() -> None:
    net = two_block_cnn((3, 16, 16), 4, keep_prob=0.9)
    assert any(isinstance(m, Dropout2d) for m in net)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 4)
    with pytest.raises(ValueError):
        two_block_cnn(head="wide")
