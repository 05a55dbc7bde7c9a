"""Training watched step by step: the loss of every step, and any probe of the model along the way.

``fit`` (``course_utils.train``) reports one number per epoch; the first steps of training, where a
badly initialised bias or a too-large last layer shows itself, need the loss of each step. Here:

- ``train_steps(model, split, steps)``: Adam on shuffled minibatches for ``steps`` steps. Returns
  ``(losses, probes)``: the minibatch loss of every step as floats, shape (steps,), and, if a
  ``probe(model)`` is given, its value every ``every`` steps, taken *before* that step's update
  (so ``probes[0]`` is the untrained model).
- ``whole_split_loss(split, loss_fn)``: a probe that scores the whole split (a smooth curve, where
  minibatch losses are noisy), in eval mode and without gradients.

Single-output models (shape (B, 1): regression, one binary logit) are squeezed to (B,) before the
loss, as ``fit`` does. Data stay on their device; one host sync per step (the loss as a float).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.train import SplitLike, predict

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _squeeze_single(outputs: torch.Tensor) -> torch.Tensor:
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return outputs.squeeze(1)
    return outputs


def train_steps(
    model: nn.Module,
    split: SplitLike,
    steps: int,
    *,
    loss_fn: LossFn = F.cross_entropy,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    probe: Callable[[nn.Module], Any] | None = None,
    every: int = 1,
) -> tuple[list[float], list[Any]]:
    """Adam (``lr``) on shuffled minibatches of ``split`` for ``steps`` steps, in train mode.

    The order is drawn from a generator seeded with ``seed`` and reshuffled at every epoch (an
    incomplete last batch is dropped). Returns ``(losses, probes)`` as described in the module
    docstring; ``probes`` is empty without a ``probe``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not 1 <= batch_size <= len(split.labels):
        raise ValueError(f"batch_size must be in [1, {len(split.labels)}], got {batch_size}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n, position, order = len(split.labels), len(split.labels), None
    losses: list[torch.Tensor] = []
    probes: list[Any] = []
    model.train()
    for step in range(steps):
        if position + batch_size > n:  # a new epoch: reshuffle
            order, position = torch.randperm(n, generator=generator).to(split.labels.device), 0
        index = order[position : position + batch_size]
        position += batch_size
        if probe is not None and step % every == 0:
            probes.append(probe(model))
        loss = loss_fn(_squeeze_single(model(split.images[index])), split.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return [float(v) for v in losses], probes


def whole_split_loss(
    split: SplitLike, loss_fn: LossFn = F.cross_entropy
) -> Callable[[nn.Module], float]:
    """A probe for ``train_steps``: ``loss_fn`` over all of ``split`` (eval mode, no gradients)."""

    def probe(model: nn.Module) -> float:
        outputs = _squeeze_single(predict(model, split.images))
        return float(loss_fn(outputs, split.labels))

    return probe
