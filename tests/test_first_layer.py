"""course_utils.first_layer: roughness is about 1.67 for 5x5 noise and low for a smooth filter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.first_layer import first_layer_rows, first_weight, roughness


def test_roughness_of_noise_and_of_a_ramp() -> None:
    noise = torch.randn(2000, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert roughness(noise) == pytest.approx(2 * 5 / 6, rel=0.03)  # 2k / (k + 1)
    ramp = torch.arange(5.0).view(1, 1, 1, 5).repeat(1, 1, 5, 1)
    # mean-removed ramp: 5 rows of (-2..2); 20 horizontal differences of 1, none vertical
    assert roughness(ramp) == pytest.approx(20 / (2 * 5 * 10))
    with pytest.raises(ValueError):
        roughness(torch.randn(3, 5, 5))


def test_rows_for_a_conv_net_and_an_mlp() -> None:
    conv = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU())
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 8))
    images, titles, scores = first_layer_rows({"conv": conv}, units=8)
    assert images.shape == (8, 1, 5, 5) and titles[0].startswith("conv:") and titles[1] == ""
    assert scores["conv"] == pytest.approx(roughness(first_weight(conv)))
    images, _, _ = first_layer_rows({"mlp": mlp}, image_shape=(1, 4, 4), units=4)
    assert images.shape == (4, 1, 4, 4)
    with pytest.raises(ValueError):
        first_layer_rows({"mlp": mlp})
