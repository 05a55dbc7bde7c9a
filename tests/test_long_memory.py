"""course_utils.long_memory: the recall task, the gradient's reach, training, steps to solve."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.long_memory import (
    PLATEAU,
    first_value_recall,
    gradient_reach,
    reach_by_length,
    steps_to_solve,
    train_recall,
)
from course_utils.models import SequenceLSTM


def test_recall_task_targets_the_marked_first_value() -> None:
    x, y = first_value_recall(500, 7, torch.Generator().manual_seed(0))
    assert x.shape == (500, 7, 2) and y.shape == (500,)
    torch.testing.assert_close(y, x[:, 0, 0])
    assert (x[:, 0, 1] == 1).all() and (x[:, 1:, 1] == 0).all()
    assert float(((y - 0.5) ** 2).mean()) == pytest.approx(PLATEAU, rel=0.15)
    with pytest.raises(ValueError):
        first_value_recall(1, 0)


def test_gradient_reach_is_zero_before_a_step_that_cannot_matter() -> None:
    class LastStep(nn.Module):  # reads only the last step: nothing reaches the others
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, -1] @ self.w

    x, y = first_value_recall(8, 5)
    reach = gradient_reach(LastStep(), x, y)
    assert reach.shape == (5,)
    assert (reach[:-1] == 0).all() and reach[-1] > 0


def test_forget_bias_one_carries_more_gradient_to_the_first_step() -> None:
    lengths = [5, 20]
    reach = {
        b: reach_by_length(lambda b=b: SequenceLSTM(2, 8, forget_bias=b), lengths)
        for b in (0.0, 1.0)
    }
    assert (reach[1.0] > reach[0.0]).all()
    # the gap grows with the length: roughly (0.73 / 0.5) ** T
    assert reach[1.0][1] / reach[0.0][1] > reach[1.0][0] / reach[0.0][0]


def test_train_recall_records_norms_and_clips() -> None:
    torch.manual_seed(0)
    model = SequenceLSTM(2, 4)
    run = train_recall(model, 3, 5, optimizer="sgd", lr=0.1, clip=1e-3)
    assert len(run.losses) == len(run.grad_norms) == 5
    assert not run.diverged and run.solved_at is None
    assert math.isfinite(run.final_loss)
    with pytest.raises(ValueError):
        train_recall(model, 3, 1, optimizer="rmsprop")


def test_a_huge_sgd_step_diverges_and_stops_the_run() -> None:
    torch.manual_seed(0)
    run = train_recall(SequenceLSTM(2, 4), 3, 50, optimizer="sgd", lr=1e6)
    assert run.diverged and len(run.losses) < 50
    assert run.final_loss == math.inf


def test_steps_to_solve_stops_when_solved_and_is_censored_otherwise() -> None:
    def make() -> nn.Module:
        return SequenceLSTM(2, 8, forget_bias=1.0)

    solved = steps_to_solve(make, 1, seed=0, max_steps=300, lr=3e-2)  # T = 1: a linear read-out
    assert 10 <= solved < 300
    assert steps_to_solve(make, 1, seed=0, max_steps=300, lr=3e-2) == solved  # seeded
    assert steps_to_solve(make, 1, seed=0, max_steps=12, level=1e-9) == 12  # censored at the cap
    assert isinstance(np.float64(solved), float)
