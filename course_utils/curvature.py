"""The extreme curvatures of a loss surface: is this flat spot a minimum or a saddle?

At a critical point (gradient 0) the Hessian H = d^2 L / d theta^2 decides: all eigenvalues >= 0 is a
minimum, some negative is a saddle (a direction that still leads down). The Deep Learning book
(section 8.2.3, after Dauphin et al. 2014, *Identifying and attacking the saddle point problem*):
in high dimension saddles vastly outnumber minima, and the plateaus a net crawls across are mostly
saddles, not local minima.

``extreme_hessian_eigenvalues(model, x, y)`` returns (lowest, highest) eigenvalue of the Hessian of
``loss_fn(model(x), y)`` over all trainable parameters (P of them), without forming the P x P matrix:
each Hessian-vector product is one double backward pass, and scipy's Lanczos solver (``eigsh``) needs
a few dozen of them. A negative lowest eigenvalue means the point is not a minimum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def hessian_vector_product(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy
) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> H v`` for the Hessian of ``loss_fn(model(x), y)`` over the trainable parameters, on
    flat float64 host vectors of length P (computed in the parameters' dtype and device)."""
    params = [p for p in model.parameters() if p.requires_grad]
    loss = loss_fn(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    like = flat_grad.detach()

    def hvp(v: np.ndarray) -> np.ndarray:
        vector = torch.as_tensor(np.asarray(v).ravel(), dtype=like.dtype, device=like.device)
        products = torch.autograd.grad(flat_grad, params, grad_outputs=vector, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in products]).double().cpu().numpy()

    return hvp


def extreme_hessian_eigenvalues(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    *,
    tol: float = 1e-3,
    seed: int = 0,
) -> tuple[float, float]:
    """(lowest, highest) Hessian eigenvalue of ``loss_fn(model(x), y)``; the model is put in eval
    mode for the measurement (its mode is restored after). ``tol``: eigsh's relative tolerance;
    ``seed`` fixes Lanczos's starting vector."""
    was_training = model.training
    model.eval()
    try:
        hvp = hessian_vector_product(model, x, y, loss_fn)
        size = sum(p.numel() for p in model.parameters() if p.requires_grad)
        operator = LinearOperator((size, size), matvec=hvp, dtype=np.float64)
        start = np.random.default_rng(seed).standard_normal(size)
        (low,) = eigsh(operator, k=1, which="SA", tol=tol, v0=start, return_eigenvectors=False)
        (high,) = eigsh(operator, k=1, which="LA", tol=tol, v0=start, return_eigenvectors=False)
    finally:
        model.train(was_training)
    return float(low), float(high)
