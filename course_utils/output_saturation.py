"""Why classifiers are trained with cross-entropy, not the squared error of their probabilities.

The Deep Learning book (section 6.2.2.2-6.2.2.3, and 8.2 on saturation): an output unit whose
nonlinearity saturates (sigmoid, softmax) makes the gradient of a squared error vanish exactly when
the model is confidently wrong, while the log in cross-entropy undoes the exponential. For logits
``z`` (N, C), labels ``y`` (N,), ``p = softmax(z)`` and the one-hot target ``t``::

    cross-entropy        L = -log p_y                      dL/dz = p - t        (norm up to sqrt 2)
    softmax MSE          L = sum_c (p_c - t_c)^2           dL/dz_k = 2 p_k (e_k - s),  s = p - t
                                                                       (the softmax Jacobian times 2s)

When one wrong class takes almost all the probability (p_wrong -> 1), ``p - t`` tends to a fixed
vector (+1 on the wrong class, -1 on the true one), but every ``p_k (e_k - s)`` tends to 0: the MSE
gradient dies where it is most needed. ``softmax_mse`` is that loss (mean over the batch, summed over
classes); ``logit_gradient_norms`` measures ||dL/dz|| for each loss as the wrong class grows
confident.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def softmax_mse(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of sum_c (softmax(logits)_c - onehot(labels)_c)^2; logits (N, C), labels
    int64 (N,). A scalar on the logits' device (0 for a perfect, confident prediction, at most 2)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"need logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    target = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return (logits.softmax(dim=1) - target).pow(2).sum(dim=1).mean()


def logit_gradient_norms(
    loss_fn: LossFn, wrong_logits: Sequence[float], num_classes: int = 10
) -> list[float]:
    """||dL/dz|| of one example whose true class is 0, with logit ``m`` on class 1 and 0 elsewhere,
    for each ``m`` of ``wrong_logits`` (large m: confidently wrong). Plain floats, in order."""
    if num_classes < 2:
        raise ValueError(f"need at least two classes, got {num_classes}")
    norms = []
    for m in wrong_logits:
        z = torch.zeros(1, num_classes, dtype=torch.float64)
        z[0, 1] = m
        z.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(z, torch.zeros(1, dtype=torch.long)), z)
        norms.append(float(grad.norm()))
    return norms
