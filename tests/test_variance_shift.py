"""course_utils.variance_shift: dropout before BN inflates its running variance; re-estimation fixes it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.layers import Dropout2d
from course_utils.variance_shift import bn_input_variance, recalibrated, variance_shift


def _net(keep: float | None) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3, padding=1, bias=False)]  # zero-mean maps
    if keep is not None:
        layers.append(Dropout2d(keep))
    layers += [nn.BatchNorm2d(4), nn.ReLU()]
    return nn.Sequential(*layers)


def _run_train(net: nn.Module, images: torch.Tensor) -> None:
    net.train()
    bn = next(m for m in net if isinstance(m, nn.BatchNorm2d))
    bn.momentum = None  # the exact average over the training batches
    with torch.no_grad():
        for i in range(0, len(images), 50):
            net(images[i : i + 50])


def test_shift_is_about_one_over_keep_with_channel_dropout_and_one_without() -> None:
    images = torch.randn(400, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for keep, expected in [(0.5, 2.0), (None, 1.0)]:
        net = _net(keep)
        _run_train(net, images)
        bn = next(m for m in net if isinstance(m, nn.BatchNorm2d))
        # Channel dropout keeps a map with prob. keep, scaled 1/keep: a zero-mean input's variance
        # grows by 1/keep.
        assert variance_shift(net, bn, images) == pytest.approx(expected, rel=0.2)
        fixed = recalibrated(net, images)
        fixed_bn = next(m for m in fixed if isinstance(m, nn.BatchNorm2d))
        assert variance_shift(fixed, fixed_bn, images) == pytest.approx(1.0, rel=0.02)


def test_input_variance_with_dropout_on_is_larger_and_the_model_ends_in_eval() -> None:
    images = torch.randn(400, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    net = _net(0.5)
    bn = net[2]
    on = bn_input_variance(net, bn, images, dropout_on=True)
    off = bn_input_variance(net, bn, images, dropout_on=False)
    assert on.shape == (4,) and bool((on > off).all())
    assert not any(m.training for m in net.modules())
