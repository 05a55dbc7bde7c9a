"""Zero padding, and the random-weights probe that ranks conv architectures without training them.

**Padding** (the Deep Learning book, section 9.4). A k x k convolution with no padding ("valid")
returns a map k - 1 pixels narrower than its input, so a stack of L such layers shrinks an s x s image
to (s - L(k - 1)) x (s - L(k - 1)) and the depth is capped at (s - 1) / (k - 1) layers. "same"
padding adds (k - 1) / 2 zeros on each side and keeps every layer at s x s.
``conv_stack(padding, depth)`` builds the plain stack (conv k x k -> ReLU, ``depth`` times, then
Flatten -> Linear); ``spatial_sizes`` lists the side of each layer's output.

**Random-weights probe** (the book, section 9.9; Saxe et al. 2011, *On Random Weights and
Unsupervised Feature Learning*). Freeze a net at its random initial weights, train only the last
layer, and use its accuracy to compare architectures: a cheap ranking, if it agrees with full
training. ``random_feature_probe`` extracts the frozen features once and fits the last layer by ridge
regression on one-hot targets (a closed form: no learning rate, no steps)::

    F = features(x) (N, D), standardised with the training features' mean and std
    W = (F^T F + ridge * N * I)^-1 F^T T,   T = onehot(y) - 1/C;   prediction argmax(F W)

``concordance`` counts the architecture pairs that two rankings order the same way.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.train import SplitLike

PADDINGS = ("valid", "same")


def conv_stack(
    padding: str,
    depth: int,
    *,
    in_channels: int = 1,
    side: int = 28,
    width: int = 8,
    kernel: int = 3,
    num_classes: int = 10,
) -> nn.Sequential:
    """[Conv2d(kernel, padding) -> ReLU] x depth -> Flatten -> Linear(width * s * s, num_classes),
    where s is the side after the stack (``side`` for "same", side - depth(kernel - 1) for "valid").
    (N, in_channels, side, side) -> (N, num_classes) logits."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if kernel % 2 == 0:
        raise ValueError(f"'same' needs an odd kernel; use an odd kernel, got {kernel}")
    final = side if padding == "same" else side - depth * (kernel - 1)
    if depth < 1 or final < 1:
        raise ValueError(
            f"{depth} valid {kernel}x{kernel} layers do not fit a {side}x{side} image (at most "
            f"{(side - 1) // (kernel - 1)})"
        )
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, kernel, padding=padding), nn.ReLU()]
        channels = width
    layers += [nn.Flatten(), nn.Linear(width * final * final, num_classes)]
    return nn.Sequential(*layers)


def spatial_sizes(model: nn.Module, image_shape: Sequence[int]) -> list[int]:
    """The side (height) of the output of every ``nn.Conv2d`` of ``model``, in order, for one image
    of ``image_shape`` (C, H, W); measured on a copy on the meta device, so it costs nothing."""
    clone = copy.deepcopy(model).to("meta")
    sides: list[int] = []
    for module in clone.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(lambda m, i, out: sides.append(int(out.shape[-2])))
    clone(torch.zeros(1, *image_shape, device="meta"))
    return sides


@torch.no_grad()
def frozen_features(
    model: nn.Sequential, images: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """The input of ``model``'s last layer, (N, D), in eval mode, in batches (no gradients)."""
    body = model[:-1]
    was_training = body.training
    body.eval()
    out = torch.cat([body(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    body.train(was_training)
    return out.flatten(1)


def random_feature_probe(
    model: nn.Sequential,
    train: SplitLike,
    test: SplitLike,
    num_classes: int,
    *,
    ridge: float = 1e-3,
) -> float:
    """Test accuracy of a last layer fitted by ridge regression on ``model``'s frozen (random)
    features; see the module docstring for the formula. ``model`` is not modified."""
    f_train, f_test = frozen_features(model, train.images), frozen_features(model, test.images)
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    target = F.one_hot(train.labels, num_classes).to(f_train.dtype) - 1.0 / num_classes
    n, d = f_train.shape
    gram = f_train.T @ f_train + ridge * n * torch.eye(
        d, dtype=f_train.dtype, device=f_train.device
    )
    weights = torch.linalg.solve(gram, f_train.T @ target)
    predicted = (f_test @ weights).argmax(dim=1)
    return float((predicted == test.labels).float().mean())


def concordance(first: Mapping[str, float], second: Mapping[str, float]) -> list[float]:
    """For every pair of names (a, b) of ``first`` (in order): 1.0 if ``first`` and ``second`` order
    a and b the same way, 0.0 if opposite, 0.5 for a tie in either. Length len(first) choose 2."""
    if set(first) != set(second):
        raise ValueError(
            f"the rankings must name the same items, got {set(first)} and {set(second)}"
        )
    out = []
    for a, b in itertools.combinations(first, 2):
        sign = (first[a] - first[b]) * (second[a] - second[b])
        out.append(0.5 if sign == 0 else float(sign > 0))
    return out
