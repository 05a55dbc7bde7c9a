"""seconds_per_image measures something sensible; first_affordable picks in the caller's order."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.timing import first_affordable, seconds_per_image


def test_seconds_per_image_is_a_positive_time_and_restores_the_mode() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.BatchNorm1d(3))
    model.eval()
    seconds = seconds_per_image(model, torch.randn(8, 1, 4, 4), torch.tensor([0, 1, 2, 0] * 2))
    assert 0 < seconds < math.inf
    assert not model.training


def test_too_few_images_are_refused() -> None:
    with pytest.raises(ValueError, match="at least batch_size"):
        seconds_per_image(nn.Linear(2, 2), torch.randn(2, 2), torch.zeros(2, dtype=torch.long))


def test_first_affordable_takes_the_first_within_budget_else_the_last() -> None:
    costs = {"ResNet-18": 90.0, "ResNetSmall": 4.0, "LeNet-5": 0.5}
    assert first_affordable(costs, 5.0) == "ResNetSmall"
    assert first_affordable(costs, 100.0) == "ResNet-18"
    assert first_affordable(costs, 0.1) == "LeNet-5"
    with pytest.raises(ValueError, match="no candidates"):
        first_affordable({}, 1.0)
