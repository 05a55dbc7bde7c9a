"""Gradient probes against hand computations: ratios, dead and silent units, Adam's first step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.gradient_probes import (
    activations_and_gradients,
    first_last_gradient_ratio,
    mean_dead_fraction,
    never_positive_fraction,
    update_ratio_curve,
)


def net(activation: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), activation, nn.Linear(6, 3))


def test_first_last_ratio_matches_autograd() -> None:
    model, x, y = net(nn.Tanh()), torch.randn(10, 4), torch.randint(0, 3, (10,))
    F.cross_entropy(model(x), y).backward()
    expected = float(model[0].weight.grad.norm() / model[2].weight.grad.norm())
    model.zero_grad()
    assert first_last_gradient_ratio(model, x, y) == pytest.approx(expected, rel=1e-5)
    assert model[0].weight.grad is None or float(model[0].weight.grad.abs().sum()) == 0.0


def test_dead_and_never_positive_units_are_counted() -> None:
    relu, leaky = net(nn.ReLU()), net(nn.LeakyReLU(0.01))
    for model in (relu, leaky):
        with torch.no_grad():
            model[0].bias[:3] = -100.0  # three of six units negative everywhere
    x = torch.randn(50, 4)
    assert mean_dead_fraction(relu, x) == pytest.approx(0.5)
    assert never_positive_fraction(leaky, x) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="LeakyReLU"):
        never_positive_fraction(relu, x)


def test_activations_and_gradients_gives_hidden_layers_only_and_clears_grads() -> None:
    model = net(nn.ReLU())
    captured = activations_and_gradients(model, torch.randn(8, 4), torch.randint(0, 3, (8,)))
    assert set(captured) == {"act 1", "grad W1"}
    assert captured["grad W1"].shape == (6, 4)
    assert all(p.grad is None for p in model.parameters())


def test_adams_first_step_moves_every_weight_by_lr() -> None:
    # Adam's first update is lr * sign(g) (bias-corrected m / sqrt(v) = g / |g|), so the ratio of a
    # weight matrix is lr * sqrt(numel) / ||W|| when no gradient entry is zero.
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = Split(torch.randn(32, 4), torch.randint(0, 3, (32,)))
    curve = update_ratio_curve(model, split, lr=1e-3, steps=1, batch_size=32)
    ratios = [
        1e-3 * math.sqrt(before[k].numel()) / float(before[k].norm())
        for k in ("1.weight", "3.weight")
    ]
    assert curve[0] == pytest.approx(float(np.median(ratios)), rel=1e-3)
