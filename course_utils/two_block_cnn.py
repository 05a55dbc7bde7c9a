"""Stage 4's small conv net: two conv blocks and a head that is either fully connected or pooled.

    conv5x5(w) -> BN -> ReLU -> maxpool2 [-> Dropout2d(keep)] -> conv3x3(2w) -> BN -> ReLU -> maxpool2
    -> head

The two heads differ in one thing only, how the (2w, H/4, W/4) feature maps become a vector:

- ``"fc"``:  flatten all 2w * H/4 * W/4 values    -> Linear(., 128) -> ReLU -> Linear(128, K)
- ``"gap"``: average each channel over the image  -> Linear(2w, 128) -> ReLU -> Linear(128, K)

(global average pooling, Lin et al. 2013): same depth, same hidden layer, far fewer weights in the
first linear layer. The net is built after ``torch.manual_seed(seed)``, so two nets of the same kind
and seed start from the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

from course_utils.layers import Dropout2d

HEADS = ("fc", "gap")
HIDDEN = 128


def two_block_cnn(
    in_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    *,
    width: int = 8,
    head: str = "fc",
    keep_prob: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> nn.Sequential:
    """The net above for images of shape ``in_shape`` (C, H, W); ``keep_prob`` adds channel dropout
    after the first block (None: none). Returns an ``nn.Sequential`` (index 0 is the first conv)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    c, h, w = in_shape
    torch.manual_seed(seed)  # before any layer draws its weights
    layers: list[nn.Module] = [
        nn.Conv2d(c, width, 5, padding=2, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]
    if keep_prob is not None:
        layers.append(Dropout2d(keep_prob))
    layers += [
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
    ]
    if head == "gap":
        layers.append(nn.AdaptiveAvgPool2d(1))
        features = 2 * width
    else:
        features = 2 * width * (h // 4) * (w // 4)
    layers += [nn.Flatten(), nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, num_classes)]
    return nn.Sequential(*layers).to(device)


def n_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def linear_params(model: nn.Module) -> int:
    """Parameters in the ``nn.Linear`` layers of ``model`` (the head)."""
    return sum(
        p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters()
    )
