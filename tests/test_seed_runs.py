"""paired_runs pairs arms seed by seed; fit_run repeats itself for a seed; correct scores per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.data import Split
from course_utils.seed_runs import correct, fit_run, paired_runs


def tiny_split(n: int = 48, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return Split(x, (x[:, 0] + x[:, 1] > 0).long())


def test_paired_runs_gives_every_arm_one_result_per_seed_in_seed_order() -> None:
    calls = []

    def arm(offset):
        def run(seed):
            calls.append((seed, offset))
            return seed + offset

        return run

    results = paired_runs({"a": arm(0), "b": arm(100)}, [3, 5, 7])
    assert results == {"a": [3, 5, 7], "b": [103, 105, 107]}
    assert calls[:2] == [(3, 0), (3, 100)]  # seeds outside, arms inside: complete pairs first
    with pytest.raises(ValueError, match="at least one"):
        paired_runs({}, [0])


def test_fit_run_is_repeatable_per_seed_and_differs_across_seeds() -> None:
    run = fit_run(lambda: nn.Linear(4, 2), tiny_split(), tiny_split(seed=1), epochs=2, lr=1e-2)
    assert run(0) == run(0)
    loss = fit_run(lambda: nn.Linear(4, 2), tiny_split(), metric="train_loss", epochs=2)
    assert loss(0) != loss(1)


def test_fit_run_measure_and_schedule() -> None:
    def collapse(optimizer):  # the rate is 0 after the first step
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.0)

    def weights(epochs, schedule):
        run = fit_run(
            lambda: nn.Linear(4, 2),
            tiny_split(),
            measure=lambda m: float(m.weight.detach().abs().sum()),
            schedule=schedule,
            epochs=epochs,
            batch_size=8,
            lr=1.0,
        )
        return run(0)

    frozen = weights(3, (collapse, True))
    assert frozen == pytest.approx(weights(1, (collapse, True)))  # only the first step moved it
    assert frozen != pytest.approx(weights(3, None))


def test_correct_is_one_where_the_argmax_is_the_label() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    split = Split(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]), torch.tensor([0, 0, 0]))
    np.testing.assert_array_equal(correct(model, split), [1.0, 0.0, 1.0])
