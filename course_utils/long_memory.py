"""A memory task with no shortcut, for the LSTM's forget-gate bias and for gradient clipping.

**The task** (``first_value_recall``): T steps of (value, marker); the marker is 1 at the first step
only, and the target at the end is the first step's value. Every other value is noise, so nothing near
the end helps: until the net carries the first value across all T steps, its best guess is the mean
and its MSE sits on the plateau Var U(0, 1) = 1/12. (In the adding problem one of the two marked values
lies in the second half, near the end: the net learns that one first, and the far one by degrees.)

**Why the forget bias matters** (Gers et al. 2000; Jozefowicz et al. 2015,
http://proceedings.mlr.press/v37/jozefowicz15.pdf): the gradient reaching the first step passes through
T forget gates, dc_T/dc_1 = prod_t f_t, with f_t ~ sigmoid(b_f) at initialisation: about 0.5^T for
b_f = 0 and 0.73^T for b_f = 1 (``gradient_reach``). ``steps_to_solve`` measures how many training steps
a net takes to leave the plateau.

**Clipping** (Pascanu et al. 2013, https://arxiv.org/abs/1211.5063): ``train_recall`` trains with plain
SGD, optionally with ``clip_grad_norm_``, and records the pre-clip gradient norms and whether the run
diverged (a non-finite loss, or one above ``DIVERGED``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.runtime import seed_everything

PLATEAU = 1 / 12  # MSE of predicting the mean of U(0, 1)
DIVERGED = 1e3  # a training loss above this (or NaN/inf) counts as a diverged run


def first_value_recall(
    n: int,
    length: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, length, 2): channel 0 values in U(0, 1), channel 1 a marker at step 0; y (n,) = x[:, 0, 0]."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    values = torch.rand(n, length, generator=generator)
    markers = torch.zeros(n, length)
    markers[:, 0] = 1.0
    return torch.stack([values, markers], dim=-1).to(device), values[:, 0].to(device)


def gradient_reach(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """||dL/dx_t|| for every time step t (shape (T,)): how much the MSE loss hears of each input."""
    x = x.clone().requires_grad_(True)
    F.mse_loss(model(x).squeeze(-1), y).backward()
    return x.grad.norm(dim=(0, 2)).detach().cpu().numpy()


def reach_by_length(
    make_model: Callable[[], nn.Module],
    lengths: Sequence[int],
    *,
    n: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """||dL/dx_1|| at initialisation for each sequence length (shape (len(lengths),))."""
    reach = []
    for length in lengths:
        seed_everything(seed)
        model = make_model()
        device = next(model.parameters()).device
        x, y = first_value_recall(n, length, torch.Generator().manual_seed(seed), device)
        reach.append(gradient_reach(model, x, y)[0])
    return np.asarray(reach)


@dataclass
class RecallRun:
    """One training run: per-step loss and pre-clip gradient norm; ``diverged``; ``solved_at``."""

    losses: list[float]
    grad_norms: list[float]
    diverged: bool
    solved_at: int | None

    @property
    def final_loss(self) -> float:
        """Mean loss of the last 20 steps (inf for a diverged run)."""
        return math.inf if self.diverged else float(np.mean(self.losses[-20:]))


def train_recall(
    model: nn.Module,
    length: int,
    steps: int,
    *,
    optimizer: str = "adam",
    lr: float = 1e-2,
    batch_size: int = 32,
    clip: float | None = None,
    seed: int = 0,
    solved_below: float | None = None,
    window: int = 10,
) -> RecallRun:
    """Train ``model`` on fresh ``first_value_recall`` batches for up to ``steps`` steps.

    ``optimizer``: ``"adam"`` or ``"sgd"`` (plain, no momentum) at ``lr``; ``clip``: max gradient norm
    for ``clip_grad_norm_`` (None: no clipping; the norm is recorded either way). ``solved_below``: stop
    at the first step where the mean loss of the last ``window`` steps is below it (``solved_at``);
    a loss that is non-finite or above ``DIVERGED`` stops the run as diverged.
    """
    device = next(model.parameters()).device
    make = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if optimizer not in make:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    opt = make[optimizer](model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    run = RecallRun([], [], False, None)
    model.train()
    for step in range(steps):
        x, y = first_value_recall(batch_size, length, generator, device)
        loss = F.mse_loss(model(x).squeeze(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip or math.inf)
        run.grad_norms.append(float(norm))
        run.losses.append(float(loss.detach()))
        if not math.isfinite(run.losses[-1]) or run.losses[-1] > DIVERGED:
            run.diverged = True
            break
        opt.step()
        recent = run.losses[-window:]
        if solved_below is not None and len(recent) == window and np.mean(recent) < solved_below:
            run.solved_at = step + 1
            break
    return run


def steps_to_solve(
    make_model: Callable[[], nn.Module],
    length: int,
    *,
    seed: int,
    max_steps: int = 400,
    level: float = PLATEAU / 2,
    **train_kwargs: object,
) -> float:
    """Adam steps until the 10-step mean loss falls below ``level`` (half the plateau by default).

    A run that has not got there by ``max_steps`` scores ``max_steps`` (censored: the true count is
    larger, so a comparison that uses it understates the gap). ``seed`` seeds the weights and the data.
    """
    seed_everything(seed)
    model = make_model()
    run = train_recall(model, length, max_steps, seed=seed, solved_below=level, **train_kwargs)
    return float(run.solved_at if run.solved_at is not None else max_steps)
