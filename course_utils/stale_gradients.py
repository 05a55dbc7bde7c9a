"""Asynchronous SGD, simulated on one CPU: apply gradients computed ``staleness`` steps ago.

In asynchronous data-parallel SGD (Hogwild!, Recht et al. 2011; Downpour SGD, Dean et al. 2012; the
Deep Learning book §12.1.3) many workers read the shared parameters, compute a gradient on their own
minibatch and write the update back without waiting for each other. By the time a worker's gradient
lands, the others have moved the parameters: the gradient is *stale*. With ``k`` workers in a
steady round, each gradient is about ``k`` updates old. One process reproduces exactly that
arithmetic::

    g_t      = grad L(theta_{t-k}; batch_t)        computed at the parameters of k steps ago
    theta_{t+1} = theta_t - eps g_t                 applied to the current parameters

(for t < k, the oldest parameters there are, theta_0). ``k = 0`` is ordinary synchronous SGD. The
parameters of the last k steps are kept in a queue; the gradient is taken with
``torch.func.functional_call`` on the stale copy, so the model itself always holds theta_t. Models
without buffers (an MLP) only: batch-norm statistics would need a staleness of their own.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from course_utils.mlp_runs import MLPRuns
from course_utils.train import SplitLike, evaluate


def train_stale(
    model: nn.Module,
    train: SplitLike,
    *,
    staleness: int,
    lr: float,
    epochs: int = 3,
    batch_size: int = 64,
    momentum: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Train ``model`` in place with SGD(lr, momentum) whose every gradient is ``staleness`` steps
    old (see the module docstring); the batch order comes from ``seed``. Returns the model."""
    if staleness < 0:
        raise ValueError(f"staleness must be >= 0, got {staleness}")
    if any(True for _ in model.buffers()):
        raise ValueError("train_stale supports models without buffers (no batch norm)")
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    generator = torch.Generator().manual_seed(seed)
    history: deque[list[torch.Tensor]] = deque(maxlen=staleness + 1)
    n = len(train.labels)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(train.labels.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            history.append([p.detach().clone() for p in params])
            stale = [t.requires_grad_() for t in history[0]]  # theta_{t-k}
            logits = functional_call(
                model, dict(zip(names, stale, strict=True)), (train.images[index],)
            )
            grads = torch.autograd.grad(F.cross_entropy(logits, train.labels[index]), stale)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            optimizer.step()
            for t in history[0]:
                t.requires_grad_(False)
    return model.eval()


def stale_accuracy(
    runs: MLPRuns, staleness: int, lr: float, seed: int = 0, momentum: float = 0.0
) -> float:
    """Validation accuracy of ``runs``' MLP (width, batch size and epochs of ``runs``) trained by
    ``train_stale`` from ``seed``; 0.0 if it diverged."""
    model = runs.model(seed=seed)
    train_stale(
        model,
        runs.train,
        staleness=staleness,
        lr=lr,
        epochs=runs.epochs,
        batch_size=runs.batch_size,
        momentum=momentum,
        seed=seed,
    )
    result = evaluate(model, runs.val)
    return result["accuracy"] if math.isfinite(result["loss"]) else 0.0


def staleness_sweep(
    runs: MLPRuns,
    stalenesses: list[int],
    lr: float,
    seeds: list[int] | range,
    momentum: float = 0.0,
) -> np.ndarray:
    """``stale_accuracy`` for each seed and staleness: shape (n_seeds, n_stalenesses)."""
    return np.array(
        [[stale_accuracy(runs, k, lr, s, momentum) for k in stalenesses] for s in seeds]
    )
