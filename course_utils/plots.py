"""Pictures the course shows again and again: images, training curves, class counts, histograms.

Every function draws on a given ``ax`` (or makes a new figure) and returns the matplotlib ``Figure``
so notebooks can display or save it. Inputs are tensors or arrays on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _numpy(values: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values)


def image_grid(
    images: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 10,
    size: float = 1.0,
    title: str | None = None,
    highlight: Sequence[bool] | None = None,
) -> Figure:
    """Show images (N, C, H, W) or (N, H, W) in a grid, with optional per-image titles.

    ``highlight``: images whose flag is True get a red title (e.g. wrong predictions).
    """
    array = _numpy(images)
    if array.ndim == 4:
        array = array.transpose(0, 2, 3, 1)
        if array.shape[-1] == 1:
            array = array[..., 0]
    n = len(array)
    ncols = max(1, min(ncols, n))
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(array[k], cmap="gray" if array[k].ndim == 2 else None)
        if titles is not None:
            color = "red" if highlight is not None and highlight[k] else "black"
            ax.set_title(titles[k], fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_histories(
    histories: dict[str, object],
    metrics: Sequence[str] = ("train_loss", "val_loss"),
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """One panel per metric, one line per named ``History`` (``{"Adam 3e-4": history, ...}``)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for name, history in histories.items():
            values = getattr(history, metric)
            if values:
                ax.plot(range(1, len(values) + 1), values, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(metric.replace("_", " "))
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_counts(
    labels: torch.Tensor | np.ndarray,
    classes: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str = "examples per class",
) -> Figure:
    """Bar chart of how many examples each class has."""
    values = _numpy(labels).astype(int)
    counts = np.bincount(values, minlength=len(classes) if classes else 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.8))
    names = list(classes) if classes else [str(i) for i in range(len(counts))]
    ax.bar(names, counts)
    ax.set_title(title)
    ax.set_ylabel("count")
    return ax.figure


def histograms(
    named_values: dict[str, torch.Tensor],
    bins: int = 50,
    ncols: int = 4,
    title: str | None = None,
    logy: bool = False,
) -> Figure:
    """One histogram per named tensor (activations, gradients, weights)."""
    n = len(named_values)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, named_values.items(), strict=False):
        ax.hist(_numpy(values).ravel(), bins=bins, log=logy)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
