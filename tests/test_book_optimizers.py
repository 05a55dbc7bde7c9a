"""The book's baseline optimisers: the linear decay of eq. 8.14, the arms, tuned rates, seeded runs."""

from __future__ import annotations

import pytest
import torch

from course_utils import book_optimizers as bo
from course_utils.data import Split
from course_utils.mlp_runs import MLPRuns


def blobs(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    x = centres[labels] + 0.5 * torch.randn(n, 4, generator=g)
    return Split(x.reshape(n, 1, 2, 2), labels)


@pytest.fixture(scope="module")
def runs() -> MLPRuns:
    return MLPRuns(blobs(120, 0), blobs(60, 1), num_classes=3, width=16, epochs=3)


def test_linear_decay_is_eq_8_14() -> None:
    factor = bo.linear_decay(100)
    assert factor(0) == 1.0
    assert factor(50) == pytest.approx(0.5 * 1 + 0.5 * 0.01)
    assert factor(100) == pytest.approx(0.01) and factor(1000) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="steps"):
        bo.linear_decay(0)


def test_specs_build_the_named_torch_optimizers() -> None:
    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = bo.OptimizerSpec("sgd", 0.9).build(params, 0.1)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert isinstance(bo.OptimizerSpec("rmsprop").build(params, 1e-3), torch.optim.RMSprop)
    assert isinstance(bo.OptimizerSpec("adam").build(params, 1e-3), torch.optim.Adam)
    with pytest.raises(ValueError, match="kind"):
        bo.OptimizerSpec("lion").build(params, 1e-3)
    momenta = sorted(s.momentum for s in bo.BOOK_ARMS.values() if s.kind == "sgd")
    assert momenta == [0.5, 0.9, 0.99]
    assert all(s.decay for s in bo.BOOK_ARMS.values() if s.kind == "sgd")


def test_momentum_sgd_matches_the_books_update() -> None:
    """Algorithm 8.2 (v <- a v - eps g; theta <- theta + v) on a quadratic equals torch's SGD."""
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = bo.OptimizerSpec("sgd", 0.9).build([theta], 0.1)
    book, v = torch.tensor([1.0, -2.0]), torch.zeros(2)
    for _ in range(5):
        opt.zero_grad()
        (theta**2).sum().backward()
        opt.step()
        v = 0.9 * v - 0.1 * (2 * book)
        book = book + v
    assert torch.allclose(theta.detach(), book, atol=1e-6)


def test_runs_learn_repeat_by_seed_and_decay_changes_the_run(runs: MLPRuns) -> None:
    spec = bo.OptimizerSpec("sgd", 0.9, decay=True)
    acc = bo.accuracy(runs, spec, 0.1, seed=0)
    assert acc > 0.8  # chance is 1/3
    assert bo.accuracy(runs, spec, 0.1, seed=0) == acc
    assert bo.accuracy(runs, bo.OptimizerSpec("adam"), 1e-2, seed=0) > 0.8
    assert bo.accuracy(runs, bo.OptimizerSpec("sgd", 0.99), 1e4, seed=0) == 0.0  # diverges


def test_best_rates_pick_from_each_arms_grid(runs: MLPRuns) -> None:
    arms = {"sgd": bo.OptimizerSpec("sgd", 0.5), "adam": bo.OptimizerSpec("adam")}
    rates = {"sgd": (1e-6, 0.3), "adam": (1e-7, 1e-2)}
    assert bo.best_rates(runs, arms, rates, seed=1) == {"sgd": 0.3, "adam": 1e-2}
    one = {name: (7.0,) for name in ("sgd", "adam")}
    assert bo.best_rates(runs, arms, one) == {"sgd": 7.0, "adam": 7.0}  # nothing to choose
