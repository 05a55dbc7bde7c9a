"""Plot layouts of stage 3's experiments, so a notebook cell keeps only the experiment.

Each function draws on the axes it is given (or on a new figure) and returns the ``Figure``:

- ``axes_row(n)``: a row of ``n`` panels;
- ``curves``: one line per named series (per-epoch, per-step or per-layer values), with an optional
  reference line (a threshold, a baseline);
- ``step_curves``: per-step losses, raw (faint) and as a running mean;
- ``paired_seeds``: the arms of a paired experiment, one grey line per seed joining its results across
  the arms and the mean of each arm on top, so the eye reads the paired differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from course_utils.step_loop import smooth


def axes_row(n: int, width: float = 4.8, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels side by side (``n * width`` by ``height`` inches)."""
    if n < 1:
        raise ValueError(f"need at least one panel, got {n}")
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes.flat)


def _axis(ax: Axes | None, size: tuple[float, float] = (6.5, 3.2)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def curves(
    series: dict[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
    start: int = 1,
    marker: str = "o-",
    reference: tuple[float, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One line per ``name: values``, x = start, start + 1, ...; ``reference = (y, label)`` adds a
    dashed horizontal line."""
    ax = _axis(ax)
    for name, values in series.items():
        ax.plot(np.arange(start, start + len(values)), values, marker, ms=3, label=name)
    if reference is not None:
        ax.axhline(reference[0], color="gray", ls="--", lw=1, label=reference[1])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


def step_curves(
    losses: dict[str, Sequence[float]],
    *,
    window: int = 20,
    ylabel: str = "training loss",
    title: str = "",
    logy: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Per-step values, raw (faint) and as a ``window``-step running mean, one colour per name."""
    ax = _axis(ax)
    for name, values in losses.items():
        (line,) = ax.plot(values, alpha=0.25)
        smoothed = smooth(values, window)
        x = np.arange(len(smoothed)) + len(values) - len(smoothed)
        ax.plot(x, smoothed, color=line.get_color(), label=name)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


def paired_seeds(
    results: dict[str, Sequence[float]],
    *,
    ylabel: str,
    title: str = "",
    scale: float = 1.0,
    ax: Axes | None = None,
) -> Figure:
    """Arms on the x axis (in order); one grey line per seed through its values, a dot per arm mean.

    ``results[arm][i]`` is seed i's value in ``arm`` (all arms the same length); values are
    multiplied by ``scale`` (e.g. 100 for percentages)."""
    lengths = {len(v) for v in results.values()}
    if len(lengths) != 1:
        raise ValueError(f"every arm needs one value per seed, got lengths {sorted(lengths)}")
    ax = _axis(ax, (1.6 * len(results) + 2, 3.2))
    table = scale * np.array([list(v) for v in results.values()], dtype=float)  # (arms, seeds)
    x = np.arange(len(results))
    ax.plot(x, table, color="gray", alpha=0.5, lw=1)
    ax.plot(x, table.mean(axis=1), "o", ms=9, color="black", label="mean over seeds")
    ax.set_xticks(x, labels=list(results), fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure
