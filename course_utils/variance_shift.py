"""Dropout before batch norm: the variance shift (Li et al. 2019) and its cheapest fix.

With dropout active, the batch norm after it learns running statistics of noisy activations; at
evaluation dropout is off, its output is less spread out, and the stored variance no longer matches::

    shift = mean over channels of running_var / var_eval       (1 = no shift; > 1 the BN over-divides)

where ``var_eval`` is the per-channel variance of the BN layer's input over some images with every
layer in eval mode. ``recalibrated`` re-estimates every BN layer's running statistics with dropout
off (a cumulative average over the given images), which removes the shift without retraining.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def bn_input_variance(
    model: nn.Module, bn: nn.Module, images: torch.Tensor, *, dropout_on: bool = False
) -> torch.Tensor:
    """Per-channel variance (C,) of the input of ``bn`` (a layer of ``model``) over ``images``.

    Every layer is in eval mode except the dropout layers when ``dropout_on`` (BN layers then use,
    and do not update, their running statistics); the model is left in eval mode."""
    seen: list[torch.Tensor] = []
    hook = bn.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout | nn.Dropout2d) or "Dropout" in type(m).__name__:
            m.train(dropout_on)
    try:
        for i in range(0, len(images), 500):
            model(images[i : i + 500])
    finally:
        hook.remove()
        model.eval()
    return torch.cat(seen).var(dim=(0, 2, 3))


def variance_shift(model: nn.Module, bn: nn.BatchNorm2d, images: torch.Tensor) -> float:
    """Mean over channels of ``bn.running_var`` / the variance its input has at evaluation."""
    return float((bn.running_var / bn_input_variance(model, bn, images)).mean())


@torch.no_grad()
def recalibrated(model: nn.Module, images: torch.Tensor, batch_size: int = 250) -> nn.Module:
    """A copy of ``model`` whose BN running statistics are re-estimated with dropout off."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
            m.train()
    for i in range(0, len(images), batch_size):
        model(images[i : i + batch_size])
    return model.eval()
