"""The Deep Learning book's baseline optimiser (SGD with momentum and a decaying rate) against
RMSProp and Adam, on the quick MLP runs of stage 5 (``course_utils.mlp_runs.MLPRuns``).

The update rules (Goodfellow, Bengio and Courville, chapter 8; g is the minibatch gradient)::

    SGD with momentum (Algorithm 8.2)   v <- alpha v - eps g;          theta <- theta + v
    RMSProp (Algorithm 8.5)             r <- rho r + (1 - rho) g^2;    theta <- theta - eps g / sqrt(delta + r)
    Adam (Algorithm 8.7)                bias-corrected first and second moments, eps 1e-3 suggested

PyTorch's ``SGD(momentum=alpha)`` keeps ``v' = alpha v' + g`` and steps ``-eps v'``: the same
trajectory for a constant rate. Momentum multiplies the step in a steady direction by
``1 / (1 - alpha)`` (2x at 0.5, 10x at 0.9, 100x at 0.99), so every optimiser below is compared at
its *own* best rate (``best_rates``), not at one shared rate.

The book's decay for SGD (§8.3.1, eq. 8.14): linear from ``eps_0`` to ``eps_tau = eps_0 / 100`` over
the first ``tau`` steps (here: the whole run), then constant::

    eps_k = (1 - k / tau) eps_0 + (k / tau) eps_tau,   k <= tau
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_utils.mlp_runs import MLPRuns
from course_utils.train import fit


@dataclass(frozen=True)
class OptimizerSpec:
    """One arm: ``kind`` "sgd", "rmsprop" or "adam"; ``momentum`` for SGD; ``decay``: the book's
    linear decay to 1% of the rate over the run (else constant)."""

    kind: str
    momentum: float = 0.0
    decay: bool = False

    def build(self, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """The torch optimizer for ``params`` at learning rate ``lr``."""
        if self.kind == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.momentum)
        if self.kind == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, alpha=0.9)  # rho 0.9 as in the book
        if self.kind == "adam":
            return torch.optim.Adam(params, lr=lr)
        raise ValueError(f'kind must be "sgd", "rmsprop" or "adam", got {self.kind!r}')


# The arms of stage 5's comparison, and the learning rates each is tuned over.
BOOK_ARMS: dict[str, OptimizerSpec] = {
    "SGD, momentum 0.5, decay": OptimizerSpec("sgd", 0.5, decay=True),
    "SGD, momentum 0.9, decay": OptimizerSpec("sgd", 0.9, decay=True),
    "SGD, momentum 0.99, decay": OptimizerSpec("sgd", 0.99, decay=True),
    "RMSProp": OptimizerSpec("rmsprop"),
    "Adam": OptimizerSpec("adam"),
}
# Wide enough that every arm's best rate is inside its grid, not at an edge (momentum 0.5 and Adam
# picked the top of a grid ending at 0.3 and 3e-3).
RATES: dict[str, tuple[float, ...]] = {
    "sgd": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "rmsprop": (1e-4, 3e-4, 1e-3, 3e-3),
    "adam": (3e-4, 1e-3, 3e-3, 1e-2),
}
QUICK_RATES: dict[str, tuple[float, ...]] = {"sgd": (0.1,), "rmsprop": (1e-3,), "adam": (1e-3,)}


def linear_decay(steps: int, final_fraction: float = 0.01) -> Callable[[int], float]:
    """The book's eq. 8.14 as a ``LambdaLR`` factor: 1 at step 0, ``final_fraction`` from step
    ``steps`` on, linear in between."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")

    def factor(step: int) -> float:
        a = min(step / steps, 1.0)
        return (1 - a) + a * final_fraction

    return factor


def accuracy(
    runs: MLPRuns, spec: OptimizerSpec, lr: float, seed: int = 0, epochs: int | None = None
) -> float:
    """Final validation accuracy of ``runs``' MLP trained with ``spec`` at ``lr`` from ``seed``
    (0.0 if the run diverged)."""
    model = runs.model(seed=seed)
    optimizer = spec.build(model.parameters(), lr)
    epochs = runs.epochs if epochs is None else epochs
    scheduler = None
    if spec.decay:
        factor = linear_decay(epochs * runs.steps_per_epoch())
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    history = fit(
        model,
        runs.train,
        runs.val,
        epochs=epochs,
        batch_size=runs.batch_size,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_per_batch=True,
        seed=seed,
        progress=False,
    )
    return history.val_accuracy[-1] if math.isfinite(history.val_loss[-1]) else 0.0


def best_rates(
    runs: MLPRuns,
    arms: Mapping[str, OptimizerSpec] = BOOK_ARMS,
    rates: Mapping[str, Iterable[float]] = RATES,
    seed: int = 100,
    **kwargs: Any,
) -> dict[str, float]:
    """Per arm, the rate of ``rates[spec.kind]`` with the best validation accuracy on ``seed`` (a
    tuning seed the comparison does not reuse; the first on a tie). A grid of one rate is not run."""
    best = {}
    for name, spec in arms.items():
        grid = list(rates[spec.kind])
        if len(grid) == 1:
            best[name] = grid[0]
            continue
        scores = [accuracy(runs, spec, lr, seed, **kwargs) for lr in grid]
        best[name] = grid[int(np.argmax(scores))]
    return best
