"""Simulated asynchronous SGD: staleness 0 is plain SGD, stale gradients come from k steps back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import stale_gradients as sg
from course_utils.data import Split
from course_utils.mlp_runs import MLPRuns


def blobs(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    x = centres[labels] + 0.5 * torch.randn(n, 4, generator=g)
    return Split(x.reshape(n, 1, 2, 2), labels)


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def test_staleness_zero_is_ordinary_sgd() -> None:
    data = blobs(40, 0)
    stale = sg.train_stale(_linear(), data, staleness=0, lr=0.1, epochs=2, batch_size=8, seed=3)
    plain = _linear()
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        order = torch.randperm(40, generator=g)
        for start in range(0, 40, 8):
            i = order[start : start + 8]
            opt.zero_grad()
            nn.functional.cross_entropy(plain(data.images[i]), data.labels[i]).backward()
            opt.step()
    for a, b in zip(stale.parameters(), plain.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_gradient_is_taken_k_steps_back() -> None:
    """On f(theta) = theta^2 / 2 (gradient theta), staleness k gives theta_{t+1} = theta_t - eps theta_{t-k}."""

    class Quadratic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.theta = nn.Parameter(torch.tensor([1.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # logits whose CE gradient we know
            return torch.stack([self.theta.expand(len(x)), torch.zeros(len(x))], dim=1)

    data = Split(torch.zeros(4, 1, 1, 1), torch.ones(4, dtype=torch.long))
    model = sg.train_stale(Quadratic(), data, staleness=2, lr=0.5, epochs=1, batch_size=1, seed=0)
    # dCE/dtheta for label 1 = softmax(theta, 0)[0]; replay the recursion by hand
    thetas = [1.0]
    for t in range(4):
        old = torch.tensor(thetas[max(t - 2, 0)])
        grad = torch.sigmoid(old).item()  # softmax([theta, 0])[0]
        thetas.append(thetas[-1] - 0.5 * grad)
    assert model.theta.item() == pytest.approx(thetas[-1], abs=1e-6)


def test_stale_accuracy_learns_and_large_staleness_hurts_at_a_high_rate() -> None:
    runs = MLPRuns(blobs(120, 0), blobs(60, 1), num_classes=3, width=16, epochs=3, batch_size=8)
    assert sg.stale_accuracy(runs, 0, 0.1, seed=0) > 0.8
    assert sg.stale_accuracy(runs, 0, 0.1, seed=0) == sg.stale_accuracy(runs, 0, 0.1, seed=0)
    grid = sg.staleness_sweep(runs, [0, 30], lr=1.0, seeds=[0, 1])
    assert grid.shape == (2, 2)
    assert (grid[:, 1] < grid[:, 0]).all()


def test_rejects_negative_staleness_and_buffers() -> None:
    data = blobs(8, 0)
    with pytest.raises(ValueError, match="staleness"):
        sg.train_stale(_linear(), data, staleness=-1, lr=0.1)
    bn = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="buffers"):
        sg.train_stale(bn, data, staleness=1, lr=0.1)
