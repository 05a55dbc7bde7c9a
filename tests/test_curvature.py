"""extreme_hessian_eigenvalues against the exact Hessian of a tiny net, and a convex case."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from course_utils.curvature import extreme_hessian_eigenvalues, hessian_vector_product


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = theta[start : start + shape.numel()].reshape(shape)
            start += shape.numel()
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss, flat)


def tiny_net_and_batch(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    x = torch.randn(20, 4, dtype=torch.float64)
    return model, x, torch.randint(0, 2, (20,))


@pytest.mark.parametrize("seed", [0, 1])
def test_the_extreme_eigenvalues_match_the_exact_hessian(seed: int) -> None:
    model, x, y = tiny_net_and_batch(seed)
    exact = torch.linalg.eigvalsh(exact_hessian(model, x, y))
    low, high = extreme_hessian_eigenvalues(model, x, y, tol=1e-8)
    assert low == pytest.approx(float(exact[0]), abs=1e-6)
    assert high == pytest.approx(float(exact[-1]), abs=1e-6)


def test_the_hessian_vector_product_is_the_exact_hessian_times_v() -> None:
    model, x, y = tiny_net_and_batch()
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    hv = hessian_vector_product(model, x, y)(v.numpy())
    assert torch.allclose(torch.as_tensor(hv), exact_hessian(model, x, y) @ v, atol=1e-10)


def test_a_linear_softmax_model_is_convex_and_a_hidden_layer_at_zero_is_a_saddle() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(50, 4, dtype=torch.float64), torch.randint(0, 3, (50,))
    low, high = extreme_hessian_eigenvalues(nn.Linear(4, 3).double(), x, y, tol=1e-8)
    assert low > -1e-8 and high > 0  # convex: no negative curvature anywhere
    net = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3)).double()  # a deep linear net
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()  # gradient 0 at the origin, yet not a minimum
    low, _ = extreme_hessian_eigenvalues(net, x, y, tol=1e-8)
    assert low < -1e-3


def test_the_model_mode_is_restored() -> None:
    model, x, y = tiny_net_and_batch()
    model.train()
    extreme_hessian_eigenvalues(model, x, y)
    assert model.training
