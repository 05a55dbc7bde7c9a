"""Pictures of the recipe's stage-2 checks: named curves, effect intervals, labels against predictions,
prediction dynamics, and per-sample gradient bars.

Every function draws on a given ``ax`` (or a new figure) and returns the matplotlib ``Figure``; inputs
are lists, arrays or tensors on any device. ``intervals`` draws ``course_utils.evidence.Comparison``s
with their minimal effect as a shaded band, so a picture and a printed verdict tell the same story.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_utils.evidence import HOLDS, NO_EFFECT, REVERSED, Comparison

VERDICT_COLOURS = {HOLDS: "tab:green", NO_EFFECT: "tab:blue", REVERSED: "tab:red"}


def _numpy(values: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6, 3.2)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def curves(
    named: Mapping[str, torch.Tensor | np.ndarray | Sequence[float]],
    *,
    x: torch.Tensor | np.ndarray | Sequence[float] | None = None,
    every: int = 1,
    smooth: int = 1,
    hlines: Mapping[str, float] | None = None,
    logy: bool = False,
    logx: bool = False,
    xlabel: str = "step",
    ylabel: str = "loss",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One line per named curve (label -> values), dashed reference lines ``hlines`` (label -> y).

    ``x``: shared x values (default ``0, every, 2*every, ...``); ``smooth``: a running mean over that
    many points (the x values then mark each window's end).
    """
    ax = _axes(ax)
    for label, values in named.items():
        y = _numpy(values)
        xs = _numpy(x) if x is not None else np.arange(len(y)) * every
        if smooth > 1 and len(y) >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
            xs = xs[smooth - 1 :]
        ax.plot(xs, y, "o-" if len(y) < 12 else "-", label=label, ms=4)
    for (label, value), colour in zip(
        (hlines or {}).items(), ("tab:red", "tab:gray", "k"), strict=False
    ):
        ax.axhline(value, color=colour, ls="--", lw=1, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def intervals(
    comparisons: Mapping[str, Comparison],
    *,
    scale: float = 1.0,
    unit: str = "",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A forest plot: each comparison's effect and 95% interval (one row each, first on top), zero,
    and the shaded band (-min_effect, +min_effect) of the first comparison. Colour by verdict:
    green holds, blue no effect at this scale, red reversed, grey inconclusive."""
    if not comparisons:
        raise ValueError("no comparisons to draw")
    names = list(comparisons)
    ax = _axes(ax, (6, 0.9 + 0.22 * len(names)))
    first = comparisons[names[0]]
    ax.axvspan(-scale * first.min_effect, scale * first.min_effect, color="tab:blue", alpha=0.12)
    ax.axvline(0, color="k", lw=0.8)
    for row, name in enumerate(names):
        c = comparisons[name]
        y = len(names) - 1 - row
        colour = VERDICT_COLOURS.get(c.verdict, "tab:gray")
        ax.plot([scale * c.low, scale * c.high], [y, y], color=colour, lw=2)
        ax.plot(scale * c.effect, y, "o", color=colour, ms=4)
    ax.set_yticks(range(len(names)), names[::-1], fontsize=7)
    ax.set(
        xlabel=f"effect{f' ({unit.strip()})' if unit.strip() else ''}, 95% interval",
        title=title or "",
    )
    ax.figure.tight_layout()
    return ax.figure


def labels_and_predictions(
    labels: torch.Tensor | np.ndarray,
    predictions: Mapping[str, torch.Tensor | np.ndarray],
    num_classes: int,
    ax: Axes | None = None,
) -> Figure:
    """Each example's label (open circle) and named predicted classes (markers) in one plot."""
    ax = _axes(ax)
    y = _numpy(labels)
    positions = np.arange(len(y))
    ax.scatter(positions, y, s=160, facecolors="none", edgecolors="k", label="label")
    for (name, values), (marker, colour) in zip(
        predictions.items(), (("x", "tab:gray"), ("+", "tab:red"), ("1", "tab:blue")), strict=False
    ):
        ax.scatter(positions, _numpy(values), marker=marker, s=120, color=colour, label=name)
    ax.set(
        xlabel="example", ylabel="class", yticks=range(num_classes), title="labels and predictions"
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.figure.tight_layout()
    return ax.figure


def prediction_dynamics(
    probabilities: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    steps: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    ncols: int = 4,
) -> Figure:
    """One panel per image: predicted probability of every class over training, shape (S, K, C) for
    S snapshots of K images; the true class (``labels``, (K,)) thick and red, the others thin."""
    probs = _numpy(probabilities)
    if probs.ndim != 3:
        raise ValueError(
            f"probabilities must have shape (snapshots, images, classes), got {probs.shape}"
        )
    truth = _numpy(labels).astype(int)
    k = probs.shape[1]
    nrows = int(np.ceil(k / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.75 * ncols, 2.2 * nrows), sharex=True, sharey=True, squeeze=False
    )
    for image, ax in enumerate(axes.flat):
        if image >= k:
            ax.axis("off")
            continue
        for c in range(probs.shape[2]):
            own = c == truth[image]
            ax.plot(
                steps,
                probs[:, image, c],
                lw=2.5 if own else 0.6,
                color="tab:red" if own else "tab:gray",
            )
        ax.set_title(f"true: {class_names[truth[image]]}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("probability")
    fig.tight_layout()
    return fig


def dependence_bars(norms: Mapping[str, torch.Tensor | np.ndarray], index: int) -> Figure:
    """One bar chart per model: |d out[index] / d x[n]| for every input n, sample ``index`` in red,
    titled with the largest other-sample norm over its own."""
    fig, axes = plt.subplots(1, len(norms), figsize=(3.25 * len(norms), 2.8), squeeze=False)
    for ax, (name, values) in zip(axes.flat, norms.items(), strict=True):
        v = _numpy(values)
        others = np.delete(v, index)
        ratio = others.max() / v[index] if v[index] > 0 and others.size else float("nan")
        ax.bar(
            range(len(v)), v, color=["tab:red" if n == index else "tab:gray" for n in range(len(v))]
        )
        ax.set_title(f"{name}\nmax other / own = {ratio:.2g}", fontsize=8)
        ax.set_xlabel("input sample n")
    axes.flat[0].set_ylabel(f"|d out[{index}] / d x[n]|")
    fig.tight_layout()
    return fig
