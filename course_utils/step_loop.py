"""A short training loop counted in optimiser steps, and a running mean for its noisy curves.

``fit`` (``course_utils.train``) counts epochs and reports one number per epoch. Some experiments need
a finer view: the loss and the gradient norm of *every* step (a deep net stuck on a plateau, a recurrent
net meeting a gradient cliff, what gradient clipping sees). ``train_steps`` records both::

    for each step: batch from a seeded shuffle of the split (reshuffled at each new epoch)
                   loss = loss_fn(model(x), y); backward
                   grad_norm = ||g||_2 over all parameters, measured *before* clipping
                   clip_grad_norm_(clip) if clip is set; Adam step

``smooth`` is the running mean that makes those per-step curves readable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.progress import progress_bar
from course_utils.runtime import grading
from course_utils.train import SplitLike

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train_steps(
    model: nn.Module,
    split: SplitLike,
    steps: int,
    *,
    loss_fn: LossFn = F.cross_entropy,
    lr: float = 3e-4,
    batch_size: int = 64,
    seed: int = 0,
    clip: float | None = None,
    progress: bool = False,
    desc: str = "steps",
) -> tuple[list[float], list[float]]:
    """Adam at ``lr`` on shuffled minibatches of ``split`` for ``steps`` steps (model in train mode).

    Returns ``(losses, grad_norms)``: one float per step each; ``grad_norms`` is the total gradient
    norm *before* clipping. ``clip``: max norm for ``torch.nn.utils.clip_grad_norm_`` (None: measure
    the norm, change nothing). A single-output model's (N, 1) output is squeezed to (N,) so that
    regression and binary losses see matching shapes. ``seed`` fixes the shuffling order.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(split.labels)
    position, order = n, None
    losses: list[float] = []
    grad_norms: list[float] = []
    model.train()
    max_norm = math.inf if clip is None else clip  # inf: measure the norm, change nothing
    for _ in progress_bar(range(steps), desc=desc, show=progress and not grading()):
        if position + batch_size > n:  # a new epoch: reshuffle
            order, position = torch.randperm(n, generator=generator).to(split.labels.device), 0
        index = order[position : position + batch_size]
        position += batch_size
        outputs = model(split.images[index])
        if outputs.ndim == 2 and outputs.shape[1] == 1:
            outputs = outputs.squeeze(1)
        loss = loss_fn(outputs, split.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, grad_norms


def smooth(values: Sequence[float] | np.ndarray, window: int = 20) -> np.ndarray:
    """Running mean over ``window`` consecutive values ("valid" mode: ``len(values) - window + 1``
    points, the k-th the mean of values[k : k + window]); the window shrinks to the data if shorter."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("smooth needs at least one value")
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")
