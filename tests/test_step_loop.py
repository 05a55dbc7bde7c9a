"""train_steps (the per-step Adam loop) and smooth (its running mean) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data import Split
from course_utils.step_loop import smooth, train_steps


def tiny_task(n: int = 64, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return Split(x, (x[:, 0] > 0).long())


def test_one_loss_and_one_gradient_norm_per_step_and_the_loss_goes_down() -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    losses, norms = train_steps(model, tiny_task(), 60, lr=1e-1, batch_size=16)
    assert len(losses) == len(norms) == 60
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_the_norm_is_measured_before_clipping_and_the_first_step_matches_a_hand_gradient() -> None:
    split = tiny_task()
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    reference = nn.Linear(5, 2)
    reference.load_state_dict(model.state_dict())
    order = torch.randperm(64, generator=torch.Generator().manual_seed(3))[:16]
    F.cross_entropy(reference(split.images[order]), split.labels[order]).backward()
    expected = torch.cat([p.grad.ravel() for p in reference.parameters()]).norm()
    _, norms = train_steps(model, split, 1, batch_size=16, seed=3, clip=1e-6)
    assert norms[0] == pytest.approx(float(expected), rel=1e-5)


def test_the_same_seed_gives_the_same_run_and_a_single_output_is_squeezed() -> None:
    split = Split(torch.randn(32, 3), torch.randn(32))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train_steps(nn.Linear(3, 1), split, 5, loss_fn=F.mse_loss, batch_size=8)[0])
    assert runs[0] == runs[1]


def test_smooth_is_the_running_mean_and_shrinks_its_window_to_the_data() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_allclose(smooth(values, 2), [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(smooth(values, 20), [3.0])
    with pytest.raises(ValueError, match="at least one"):
        smooth([], 3)


def test_bad_step_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        train_steps(nn.Linear(5, 2), tiny_task(), 0)
