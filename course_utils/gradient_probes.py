"""Probes that look inside a net: how the gradient spreads over depth, which units are silent, how far
one optimiser step moves the weights.

- ``first_last_gradient_ratio``: ||dL/dW_first|| / ||dL/dW_last|| over the Linear/Conv layers, one batch
  (``sanity.layer_statistics``). Near 1: every layer learns at a similar speed; orders of magnitude
  below 1: the gradient vanishes on its way down (sigmoid, or ReLU with too small an init; Glorot and
  Bengio 2010, He et al. 2015).
- ``mean_dead_fraction``: the mean over ReLU layers of ``sanity.dead_relu_fraction``.
- ``never_positive_fraction``: the same count for LeakyReLU layers (units negative on every example:
  dead under a plain ReLU, still passing 1% of the gradient under a leaky one).
- ``activations_and_gradients``: post-ReLU activations and hidden weight gradients, for histograms.
- ``update_ratio_curve``: the cs231n update/weight ratio ||W_after - W_before|| / ||W_before|| per
  Adam step (median over weight matrices), about 1e-3 when the learning rate is healthy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.sanity import (
    dead_relu_fraction,
    layer_statistics,
    parameters_snapshot,
    update_weight_ratio,
)
from course_utils.train import SplitLike


def first_last_gradient_ratio(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """||dL/dW|| of the first Linear/Conv layer divided by that of the last, for cross-entropy on
    (x, y); the parameters' ``.grad`` are left untouched."""
    stats = layer_statistics(model, x, y)
    if len(stats) < 2:
        raise ValueError("the model needs at least two Linear/Conv layers")
    return stats[0].weight_grad_norm / stats[-1].weight_grad_norm


def mean_dead_fraction(model: nn.Module, x: torch.Tensor) -> float:
    """Mean over ``nn.ReLU`` modules of the fraction of units that are zero on every example of x."""
    fractions = dead_relu_fraction(model, x)
    if not fractions:
        raise ValueError("the model has no nn.ReLU module")
    return float(np.mean(list(fractions.values())))


def never_positive_fraction(model: nn.Module, x: torch.Tensor) -> float:
    """Mean over ``nn.LeakyReLU`` modules of the fraction of units (features, dim 1) whose output is
    <= 0 on every example of ``x`` (they would be dead under a plain ReLU)."""
    silent: list[float] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        silent.append(float((out <= 0).all(0).float().mean()))

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.LeakyReLU)
    ]
    if not handles:
        raise ValueError("the model has no nn.LeakyReLU module")
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(np.mean(silent))


def activations_and_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``{"act k": output of the k-th nn.ReLU, "grad Wk": dL/dW of the k-th hidden Linear}`` for
    cross-entropy on one batch (the output layer's gradient is left out); ``.grad`` is cleared after."""
    captured: dict[str, torch.Tensor] = {}
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [
        m.register_forward_hook(
            lambda m, i, out, k=k: captured.__setitem__(f"act {k}", out.detach())
        )
        for k, m in enumerate(relus, 1)
    ]
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for hook in hooks:
            hook.remove()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for k, layer in enumerate(linears[:-1], 1):
        captured[f"grad W{k}"] = layer.weight.grad.detach().clone()
    model.zero_grad(set_to_none=True)
    return captured


def update_ratio_curve(
    model: nn.Module,
    split: SplitLike,
    *,
    lr: float,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
) -> list[float]:
    """Train ``model`` with Adam at ``lr`` for ``steps`` steps on random minibatches of ``split``
    (drawn with ``seed``) and return, per step, the median over weight matrices (parameters named
    ``*weight``) of ||W_after - W_before|| / ||W_before||."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    curve = []
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(split.labels), (batch_size,), generator=generator)
        index = index.to(split.labels.device)
        loss = F.cross_entropy(model(split.images[index]), split.labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        before = parameters_snapshot(model)
        optimizer.step()
        ratios = update_weight_ratio(model, before)
        curve.append(float(np.median([r for n, r in ratios.items() if n.endswith("weight")])))
    return curve
