"""Stage 3's model zoo: LeNet-5 (the proven net for digits) and a deep MLP with optional shortcuts.

- ``LeNet5``: LeCun et al., *Gradient-Based Learning Applied to Document Recognition* (1998),
  modernised with ReLU and max-pooling::

      conv5x5(6, pad 2) -> ReLU -> maxpool2 -> conv5x5(16) -> ReLU -> maxpool2
      -> Linear(16 * s_h * s_w, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, C)

  with s = (side // 2 - 4) // 2 (padding 2 makes 28x28 inputs behave like the paper's 32x32: s = 5).
- ``ResidualMLP``: Linear(in, width), then ``depth`` blocks h -> h + Linear(ReLU(h)) (pre-activation,
  He et al., *Identity Mappings in Deep Residual Networks*, 2016) or, with ``skip=False``, the same
  blocks without "h +", then ReLU and Linear(width, C). PyTorch's default init throughout, so the plain
  twin shows what the shortcuts alone change.
- ``architecture_candidates``: the "don't be a hero" candidates, most modern first.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from course_utils.init import he_init_
from course_utils.models import ResNetSmall, deep_mlp, resnet18_for_small_images


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max-pooling: (N, in_channels, H, W) -> (N, num_classes) logits.

    Needs H, W >= 16 (two 2x pools around a 5x5 valid conv). Parameters for 1x28x28 and 10 classes:
    61,706.
    """

    def __init__(self, in_channels: int, num_classes: int, height: int, width: int) -> None:
        super().__init__()
        if min(height, width) < 16:
            raise ValueError(f"LeNet-5 needs images of at least 16x16, got {height}x{width}")
        side_h, side_w = (height // 2 - 4) // 2, (width // 2 - 4) // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * side_h * side_w, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResidualMLP(nn.Module):
    """A deep MLP of ``depth`` blocks h -> h + Linear(ReLU(h)) (``skip=True``) or h -> Linear(ReLU(h))
    (``skip=False``): (N, ...) flattened to in_features -> (N, num_classes)."""

    def __init__(
        self, depth: int, width: int, skip: bool, in_features: int = 784, num_classes: int = 10
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={depth} and width={width}")
        self.skip = skip
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Linear(width, width)) for _ in range(depth)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h) if self.skip else block(h)
        return self.head(h)


def architecture_candidates(
    num_classes: int, in_channels: int, height: int, width: int
) -> dict[str, Callable[[], nn.Module]]:
    """Factories of proven architectures for small images, most modern first: ResNet-18 (small-image
    stem), ``ResNetSmall`` (the same blocks, narrower and shallower), and LeNet-5 if the images are at
    least 16x16."""
    candidates: dict[str, Callable[[], nn.Module]] = {
        "ResNet-18": lambda: resnet18_for_small_images(num_classes, in_channels),
        "ResNetSmall": lambda: ResNetSmall(in_channels, num_classes),
    }
    if min(height, width) >= 16:
        candidates["LeNet-5"] = lambda: LeNet5(in_channels, num_classes, height, width)
    return candidates


def deep_plain_mlp(
    depth: int,
    width: int,
    activation: str,
    in_features: int = 784,
    num_classes: int = 10,
    *,
    he: bool = False,
) -> nn.Module:
    """``models.deep_mlp`` (``depth`` hidden layers of ``width`` units with ``activation``, PyTorch's
    default init U(±1/sqrt(fan_in))), re-initialised with He init for ``activation``'s gain when
    ``he`` (He et al., *Delving Deep into Rectifiers*, 2015: Var(W) = 2 / fan_in for ReLU)."""
    model = deep_mlp(depth, width, activation, in_features, num_classes)
    return he_init_(model, nonlinearity=activation) if he else model
