"""Does a first layer look like noise? A number for Karpathy's "nice edges that make sense".

The **roughness** of a filter w (k x k, mean removed) is the energy of the differences between
neighbouring weights relative to the filter's own energy::

    roughness(w) = (sum (w[i, j+1] - w[i, j])^2 + sum (w[i+1, j] - w[i, j])^2) / (2 sum w^2)

For independent noise it is about 2k/(k+1) (1.67 for 5x5); smooth strokes and edges score lower.
``first_layer_rows`` stacks the first-layer filters of several models (averaged over input channels)
for ``plots.image_grid``: one row per model.
"""

from __future__ import annotations

import torch
from torch import nn


def roughness(weight: torch.Tensor) -> float:
    """Mean roughness over the filters of ``weight`` (filters, channels, k, k)."""
    if weight.ndim != 4:
        raise ValueError(
            f"need a (filters, channels, k, k) weight, got shape {tuple(weight.shape)}"
        )
    w = weight.detach().double()
    w = w - w.mean(dim=(-1, -2), keepdim=True)
    rough = (w.diff(dim=-1) ** 2).sum(dim=(1, 2, 3)) + (w.diff(dim=-2) ** 2).sum(dim=(1, 2, 3))
    return float((rough / (2 * (w**2).sum(dim=(1, 2, 3)))).mean())


def first_weight(model: nn.Module) -> torch.Tensor:
    """The weight of the first ``nn.Conv2d`` or ``nn.Linear`` layer of ``model`` (detached)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            return m.weight.detach()
    raise ValueError("the model has no Conv2d or Linear layer")


def first_layer_rows(
    models: dict[str, nn.Module], image_shape: tuple[int, int, int] | None = None, units: int = 8
) -> tuple[torch.Tensor, list[str], dict[str, float]]:
    """(images (models * units, 1, h, w), titles, {name: roughness}) for ``image_grid``.

    Conv filters are shown as they are; a linear first layer (an MLP) is reshaped to
    ``image_shape`` (C, H, W): each hidden unit's weights are a template of the image."""
    rows, titles, scores = [], [], {}
    for name, model in models.items():
        weight = first_weight(model)[:units]
        if weight.ndim == 2:
            if image_shape is None:
                raise ValueError("a linear first layer needs image_shape to be drawn")
            weight = weight.view(len(weight), *image_shape)
        maps = weight.mean(dim=1, keepdim=True)
        scores[name] = roughness(maps)
        rows.append(maps)
        titles += [f"{name}: {scores[name]:.2f}" if i == 0 else "" for i in range(len(maps))]
    return torch.cat(rows), titles, scores
