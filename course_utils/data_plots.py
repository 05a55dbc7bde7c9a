"""Pictures for looking at a dataset (stage 01): mosaics, per-class box plots, distance histograms,
labelled grids of suspects, the spread of validation estimates and one image set under several
preprocessings (``versions_grid``).

Every function returns the matplotlib ``Figure`` (the notebook shows it with ``plt.show()``).
Inputs are tensors (any device) or arrays; images are (N, C, H, W) with pixels in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from course_utils.plots import image_grid


def _numpy(values: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def mosaic(
    images: torch.Tensor, nrow: int, title: str | None = None, scale: float = 0.45
) -> Figure:
    """Many images (N, C, H, W) as one picture, ``nrow`` per row (one ``imshow``: much faster than
    a subplot per image); ``scale`` inches per image."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    rows = math.ceil(len(images) / nrow)
    fig, ax = plt.subplots(figsize=(nrow * scale * 1.1, rows * scale * 1.1))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def per_class_boxplot(
    values: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    classes: Sequence[str],
    title: str = "",
    xlabel: str = "class",
) -> Figure:
    """One box per class of ``values`` (N,) grouped by integer ``labels`` (N,)."""
    values, labels = _numpy(values), _numpy(labels).astype(int)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.boxplot([values[labels == c] for c in range(len(classes))], tick_labels=list(classes))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return fig


def distance_histograms(
    panels: dict[str, dict[str, torch.Tensor | np.ndarray]],
    log_panels: Sequence[str] = (),
    threshold: float | None = None,
    bins: int = 50,
) -> Figure:
    """One panel per distance, one histogram per group of images in it:
    ``{"raw L2": {"planted copies": d1, "others": d2}, ...}``. Panels named in ``log_panels`` get a
    log x axis (values clipped at 1e-4) and the dashed ``threshold``, if given."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3), squeeze=False)
    for ax, (name, groups) in zip(axes.flat, panels.items(), strict=True):
        arrays = {group: _numpy(values) for group, values in groups.items()}
        log = name in log_panels
        if log:
            arrays = {group: np.maximum(a, 1e-4) for group, a in arrays.items()}
        lo = min(float(a.min()) for a in arrays.values())
        hi = max(float(a.max()) for a in arrays.values())
        edges = np.geomspace(lo, hi, bins) if log else np.linspace(lo, hi, bins)
        for group, a in arrays.items():
            ax.hist(a, bins=edges, alpha=0.6, label=group)
        if log:
            ax.set_xscale("log")
            if threshold is not None:
                ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold}")
        ax.set_title(f"distance to the nearest other image: {name}", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def labelled_grid(
    images: torch.Tensor,
    given: Sequence[int] | torch.Tensor,
    predicted: Sequence[int] | torch.Tensor,
    classes: Sequence[str],
    title: str,
    highlight: Sequence[bool] | None = None,
    ncols: int = 10,
) -> Figure:
    """Images titled ``given <label> / pred <label>`` (red where ``highlight``)."""
    titles = [
        f"given {classes[int(g)]} / pred {classes[int(p)]}"
        for g, p in zip(given, predicted, strict=True)
    ]
    return image_grid(
        images, titles=titles, highlight=highlight, ncols=ncols, size=1.15, title=title
    )


def split_spread(
    fold_scores: np.ndarray, n_val: int, standard_errors: tuple[float, float]
) -> Figure:
    """Validation accuracy of every single fold (top row) and of each k-fold mean (bottom row) over
    re-splits: ``fold_scores`` (repeats, k); ``standard_errors``: the binomial ones of one split
    and of the k-fold mean, drawn as bars around the grand mean."""
    fold_scores = np.asarray(fold_scores, dtype=np.float64)
    means, grand = fold_scores.mean(axis=1), float(fold_scores.mean())
    k = fold_scores.shape[1]
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.scatter(fold_scores.ravel(), np.zeros(fold_scores.size), alpha=0.6)
    ax.scatter(means, np.ones_like(means), color="C3")
    ax.errorbar([grand], [0.25], xerr=[standard_errors[0]], color="C0", capsize=4, fmt="|")
    ax.errorbar([grand], [1.25], xerr=[standard_errors[1]], color="C3", capsize=4, fmt="|")
    ax.set_yticks(
        [0, 1], [f"one split\n({n_val} val images)", f"{k}-fold mean\n({k * n_val} images)"]
    )
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("validation accuracy (bars: +-1 binomial standard error)")
    ax.set_title("the same model and data, different random splits")
    fig.tight_layout()
    return fig


def versions_grid(
    versions: dict[str, torch.Tensor | np.ndarray], *, size: float = 1.0, title: str | None = None
) -> Figure:
    """One row per ``name: images`` (each (N, C, H, W) or (N, H, W), single channel shown in grey),
    the same N images in every row. Each row uses **one** colour scale for all its images (from the
    row's minimum to its maximum, printed on the left), so a preprocessing step that changes the
    relative brightness of images shows (``imshow``'s per-image scaling would hide it)."""
    if not versions:
        raise ValueError("versions_grid needs at least one version")
    rows = {name: _numpy(images) for name, images in versions.items()}
    counts = {len(images) for images in rows.values()}
    if len(counts) != 1:
        raise ValueError(f"every version needs the same images, got counts {sorted(counts)}")
    n = counts.pop()
    fig, axes = plt.subplots(
        len(rows), n, figsize=(n * size + 1.6, len(rows) * size * 1.05), squeeze=False
    )
    for row, (name, images) in zip(axes, rows.items(), strict=True):
        images = images[:, 0] if images.ndim == 4 else images
        low, high = float(images.min()), float(images.max())
        for ax, image in zip(row, images, strict=True):
            ax.imshow(image, cmap="gray", vmin=low, vmax=high)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(
            f"{name}\n[{low:.2g}, {high:.2g}]", fontsize=7, rotation=0, ha="right", va="center"
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
