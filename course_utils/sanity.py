"""The recipe's stage-2 sanity checks as functions you can call on any model.

Shared interface: each function takes a ``model`` (an ``nn.Module``) and a batch ``x`` (and labels
``y`` where a loss is needed) already on the model's device, and leaves the model as it found it
unless its job is to train it (``overfit_one_batch``); as with any forward pass in train mode,
BatchNorm layers still update their running statistics. Functions that answer a yes/no or summary
question return Python floats/bools (one host sync per call); ``batch_dependence`` returns a tensor
on the input's device.

Sources: Karpathy, *A Recipe for Training Neural Networks* (2019), stage 2 ("verify loss @ init",
"input-independent baseline", "overfit one batch", "use backprop to chart dependencies"); the cs231n
notes on the update/weight ratio (about 1e-3 is healthy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
T = TypeVar("T")

_LAYER_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def expected_initial_loss(num_classes: int) -> float:
    """Cross-entropy of a classifier that predicts the uniform distribution: -ln(1/C) = ln C (nats).

    A freshly initialised classifier should start close to this value (2.3026 for C = 10). Much
    higher means confident wrong predictions at init (e.g. a too-large final layer).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return math.log(num_classes)


def initial_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy
) -> float:
    """``loss_fn(model(x), y)`` without building a graph, as a Python float.

    Compare it with ``expected_initial_loss(C)`` before training.
    """
    with torch.no_grad():
        return float(loss_fn(model(x), y))


def overfit_one_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 200,
    lr: float = 3e-3,
    loss_fn: LossFn = F.cross_entropy,
) -> list[float]:
    """Train ``model`` in place on one batch ``(x, y)`` with Adam and return the loss history.

    Each step: zero the gradients, loss = loss_fn(model(x), y), backward, optimizer step.
    ``history[i]`` is the loss before update i, as a float. A model that cannot drive this loss near
    zero on a handful of examples has a bug (or is far too small). The model is put in train mode.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    return history


def batch_dependence(model: nn.Module, x: torch.Tensor, index: int) -> torch.Tensor:
    """How much each input sample influences the output of sample ``index``.

    Computes g = d(sum(model(x)[index])) / dx with a fresh leaf copy of ``x`` (so the caller's
    tensor and the parameters' ``.grad`` are untouched) and returns the per-sample norms
    ``g.reshape(N, -1).norm(dim=1)``, shape (N,), on ``x``'s device. For a model that treats samples
    independently only entry ``index`` is non-zero; non-zeros elsewhere mean the model mixes the
    batch, e.g. a ``view`` where ``permute``/``transpose`` was meant.

    The model runs in the mode it is in. BatchNorm in train mode legitimately mixes the batch (it
    normalises with batch statistics), so test in ``eval()`` mode for models that contain it.
    ``x`` must be floating point (for token ids, test the embeddings instead).
    """
    if x.dim() < 1 or not x.is_floating_point():
        raise ValueError(
            f"x must be a floating-point batch of shape (N, ...), got shape {tuple(x.shape)} "
            f"and dtype {x.dtype}"
        )
    n = x.shape[0]
    if not -n <= index < n:
        raise ValueError(f"index must be in [0, {n}), got {index}")
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        target = model(leaf)[index].sum()
        (grad,) = torch.autograd.grad(target, leaf, allow_unused=True)
    if grad is None:
        return x.new_zeros(n)
    return grad.reshape(n, -1).norm(dim=1)


def mixes_batch(model: nn.Module, x: torch.Tensor, tol: float = 0.0) -> bool:
    """True when the output of some sample depends on another sample's input.

    Runs ``batch_dependence`` for every sample when N <= 8, else for the first, middle and last, and
    reports a dependence when an off-index gradient norm exceeds ``tol``. See ``batch_dependence``
    about BatchNorm in train mode.
    """
    n = x.shape[0]
    indices = range(n) if n <= 8 else sorted({0, n // 2, n - 1})
    for index in indices:
        norms = batch_dependence(model, x, index)
        others = torch.cat([norms[:index], norms[index + 1 :]])
        if others.numel() and bool((others > tol).any()):
            return True
    return False


@dataclass
class BaselineComparison(Generic[T]):
    """What ``train_fn`` returned on the real inputs and on all-zero inputs."""

    real: T
    zeroed: T


def input_independent_baseline(
    train_fn: Callable[[torch.Tensor, torch.Tensor], T], x: torch.Tensor, y: torch.Tensor
) -> BaselineComparison[T]:
    """Run the same training on the real inputs and on ``torch.zeros_like(x)``.

    ``train_fn(x, y)`` must build a fresh model, train it and return what you want to compare (a
    loss history, a final accuracy...), e.g.
    ``lambda x, y: overfit_one_batch(make_model(), x, y, steps=100)``. A model that does as well on
    zeros as on the data has not learned to use its inputs.
    """
    return BaselineComparison(real=train_fn(x, y), zeroed=train_fn(torch.zeros_like(x), y))


def parameters_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters, by name, to diff against after an update."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def update_weight_ratio(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> dict[str, float]:
    """||w_after - w_before|| / ||w_before|| for each parameter in ``snapshot``.

    Take ``snapshot = parameters_snapshot(model)``, run one ``optimizer.step()``, then call this.
    The cs231n heuristic: about 1e-3 is healthy; much lower suggests a too-small lr, much higher a
    too-large one. A parameter that was all zeros before (a fresh bias) gets ``inf`` if it moved,
    else 0.0.
    """
    params = dict(model.named_parameters())
    missing = [name for name in snapshot if name not in params]
    if missing:
        raise ValueError(f"snapshot has parameters the model does not: {missing}")
    ratios = {}
    for name, before in snapshot.items():
        update = float((params[name].detach() - before).norm())
        scale = float(before.norm())
        ratios[name] = update / scale if scale > 0 else (math.inf if update > 0 else 0.0)
    return ratios


def dead_relu_fraction(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Fraction of units of each ``nn.ReLU`` module that output zero for every sample of ``x``.

    A unit is one channel (dim 1 of the ReLU's output): a feature of an (N, F) output, a feature map
    of an (N, C, H, W) one, counted as alive if it is positive anywhere in the batch. Found with
    forward hooks, so only ``nn.ReLU`` modules are seen (not ``F.relu`` calls). A module used k > 1
    times in one forward pass is reported as ``name#0`` ... ``name#{k-1}``. Runs without gradients,
    in the model's current mode.
    """
    alive: dict[str, list[torch.Tensor]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            positive = output > 0
            if output.dim() < 2:
                mask = positive.any().reshape(1)
            else:
                mask = positive.transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)
            alive.setdefault(name, []).append(mask)

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    fractions = {}
    for name, calls in alive.items():
        for k, mask in enumerate(calls):
            key = name if len(calls) == 1 else f"{name}#{k}"
            fractions[key] = float((~mask).float().mean())
    return fractions


@dataclass
class LayerStats:
    """Activation and gradient statistics of one Linear/Conv layer for one batch.

    - ``activation_mean``, ``activation_std``: of all elements of the layer's output;
    - ``output_grad_norm``: ||dL/d output|| (NaN when no gradient reaches the output, e.g. a frozen
      first layer);
    - ``weight_grad_norm``: ||dL/dW|| (0.0 for a frozen weight); ``weight_norm``: ||W||.
    """

    name: str
    kind: str
    activation_mean: float
    activation_std: float
    output_grad_norm: float
    weight_grad_norm: float
    weight_norm: float


def layer_statistics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy
) -> list[LayerStats]:
    """One forward and backward pass of ``loss_fn(model(x), y)``, summarised per Linear/Conv layer.

    A forward hook records each layer's output (mean and std over all its elements) and registers a
    tensor hook that captures dL/d output during the backward pass; the weight gradients come from
    ``torch.autograd.grad``, so the parameters' ``.grad`` is left untouched. Layers in forward
    order; a layer called twice is reported twice. Use it to spot vanishing/exploding activations or
    gradients layer by layer.
    """
    records: list[dict[str, object]] = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            entry: dict[str, object] = {
                "name": name,
                "module": module,
                "mean": output.detach().float().mean(),
                "std": output.detach().float().std()
                if output.numel() > 1
                else output.new_zeros(()),
            }
            if output.requires_grad:
                output.register_hook(lambda g: entry.__setitem__("grad", g.detach().norm()))
            records.append(entry)

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, _LAYER_TYPES)
    ]
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            weights = [entry["module"].weight for entry in records]  # type: ignore[union-attr]
            trainable = [w for w in weights if w.requires_grad]
            found = torch.autograd.grad(loss, trainable, allow_unused=True) if trainable else ()
    finally:
        for handle in handles:
            handle.remove()

    found_iter = iter(found)
    stats = []
    for entry, weight in zip(records, weights, strict=True):
        module = entry["module"]
        assert isinstance(module, nn.Module)
        grad = next(found_iter) if weight.requires_grad else None
        stats.append(
            LayerStats(
                name=str(entry["name"]),
                kind=type(module).__name__,
                activation_mean=float(entry["mean"]),  # type: ignore[arg-type]
                activation_std=float(entry["std"]),  # type: ignore[arg-type]
                output_grad_norm=float(entry.get("grad", math.nan)),  # type: ignore[arg-type]
                weight_grad_norm=float(grad.norm()) if grad is not None else 0.0,
                weight_norm=float(module.weight.detach().norm()),  # type: ignore[union-attr]
            )
        )
    return stats


def other_sample_ratio(norms: torch.Tensor, index: int) -> float:
    """The largest other-sample norm over sample ``index``'s own, from ``batch_dependence``'s (N,)
    output: 0.0 for a model that keeps samples apart, > 0 when it mixes the batch (NaN if the own
    norm is 0)."""
    norms = norms.detach().float().flatten()
    others = torch.cat([norms[:index], norms[index + 1 :]]) if index != -1 else norms[:-1]
    own = float(norms[index])
    if own == 0.0:
        return math.nan
    return float(others.max()) / own if others.numel() else 0.0
