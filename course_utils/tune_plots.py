"""The figures of stage 05 (search the space): one function per figure, each returns the Figure.

Accuracies are passed as fractions and drawn in percent; an array of shape (n_seeds, n_values) is
drawn as its mean over seeds with every seed as a thin line behind it, so the spread is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from course_utils.schedules import LRRangeResult
from course_utils.surfaces import Surface


def _seed_lines(ax, xs, curves, label: str | None = None, fmt: str = "o-", scale: float = 100):
    curves = scale * np.atleast_2d(np.asarray(curves, dtype=np.float64))
    line = ax.plot(xs, curves.mean(axis=0), fmt, label=label)[0]
    for row in curves:
        ax.plot(xs, row, "-", color=line.get_color(), alpha=0.25, lw=1)
    return line


def search_designs(
    surface: Surface, grid_points: np.ndarray, random_points: np.ndarray, n: int = 200
) -> Figure:
    """Bergstra & Bengio's picture: a grid and random points on ``surface`` (lr x weight decay), and
    what each design saw of the learning rate. ``*_points``: arrays (k, 2) of (lr, weight decay)."""
    (lr_lo, lr_hi), (wd_lo, wd_hi) = surface.space["lr"][1:], surface.space["weight_decay"][1:]
    lr_axis, wd_axis = np.geomspace(lr_lo, lr_hi, n), np.geomspace(wd_lo, wd_hi, n)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    designs = [(axes[0], grid_points, "grid"), (axes[1], random_points, "random")]
    for ax, pts, name in designs:
        ax.contourf(lr_axis, wd_axis, surface.score(lr_axis[None, :], wd_axis[:, None]), levels=20)
        ax.scatter(pts[:, 0], pts[:, 1], c="white", edgecolors="black", s=40)
        distinct = len(np.unique(pts[:, 0]))
        ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="weight decay")
        ax.set_title(f"{len(pts)} {name} points: {distinct} distinct learning rates")
    axes[2].plot(lr_axis, surface.score(lr_axis, surface.wd_opt), color="gray", label="score vs lr")
    for pts, fmt, name in [(grid_points, "s", "grid"), (random_points, "o", "random")]:
        axes[2].plot(pts[:, 0], surface.score(pts[:, 0], pts[:, 1]), fmt, mfc="none", label=name)
    axes[2].set(xscale="log", xlabel="learning rate", ylabel="score", title="what each design saw")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_panels(
    panels: Mapping[str, tuple[Sequence[float], np.ndarray]], ylabel: str = "val accuracy (%)"
) -> Figure:
    """One panel per swept hyper-parameter: ``{xlabel: (values, curves (n_seeds, n_values))}``,
    log x axis, the title giving the mean spread (best - worst) over seeds in points."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.2), sharey=True)
    for ax, (label, (xs, curves)) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        curves = np.atleast_2d(curves)
        _seed_lines(ax, xs, curves)
        spread = 100 * (curves.max(axis=1) - curves.min(axis=1)).mean()
        ax.set(xscale="log", xlabel=label, title=f"spread {spread:.1f} points (mean over seeds)")
        if all(float(x).is_integer() for x in xs):  # widths, batch sizes: label the values tried
            ax.set_xticks(list(xs), [str(int(x)) for x in xs])
            ax.minorticks_off()
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def regret_curves(
    curves: Mapping[str, np.ndarray], *, scale: float = 100, unit: str = "points"
) -> Figure:
    """Median best-so-far regret against the trial number, with the middle half of the runs shaded:
    ``{name: (n_runs, n_trials)}``."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, c in curves.items():
        c = scale * np.asarray(c, dtype=np.float64)
        trials = np.arange(1, c.shape[1] + 1)
        line = ax.plot(trials, np.median(c, axis=0), label=f"{name} (median)")[0]
        lo, hi = np.percentile(c, [25, 75], axis=0)
        ax.fill_between(trials, lo, hi, color=line.get_color(), alpha=0.2)
    n = len(next(iter(curves.values())))
    ax.set(xlabel="trial", ylabel=f"regret ({unit})", yscale="symlog", title=f"{n} surfaces")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def best_so_far_curves(
    values: Mapping[str, Sequence[float]], marks: Mapping[str, float] | None = None
) -> Figure:
    """Best validation accuracy so far against the trial number, one line per search;
    ``marks`` draws labelled vertical lines (e.g. the end of TPE's random start-up)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        ax.plot(np.arange(1, len(v) + 1), 100 * np.maximum.accumulate(v), "o-", ms=4, label=name)
    for label, x in (marks or {}).items():
        ax.axvline(x, color="gray", ls=":", lw=1, label=label)
    ax.set(xlabel="trial", ylabel="best val accuracy so far (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def batch_size_panels(
    batch_sizes: Sequence[int], accuracy: np.ndarray, seconds_per_epoch: Sequence[float]
) -> Figure:
    """Validation accuracy (curves (n_seeds, n_sizes)) and seconds per epoch against batch size."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    _seed_lines(axes[0], batch_sizes, accuracy)
    axes[0].set(ylabel="val accuracy (%)", title="LR re-tuned per batch size, equal epochs")
    axes[1].plot(batch_sizes, seconds_per_epoch, "o-")
    axes[1].set(ylabel="seconds per epoch", title="speed (this machine, this load)")
    for ax in axes:
        ax.set(xscale="log", xlabel="batch size")
        ax.set_xticks(list(batch_sizes), [str(b) for b in batch_sizes])
        ax.minorticks_off()
    fig.tight_layout()
    return fig


def range_test(result: LRRangeResult, reference_lr: float | None = None) -> Figure:
    """The LR range test's loss against the learning rate, its suggestion and ``reference_lr``."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(result.lrs, result.raw_losses, color="lightgray", label="loss of the step")
    ax.plot(result.lrs, result.losses, label="smoothed")
    ax.axvline(result.suggested_lr, color="tab:red", ls="--", label="suggested")
    if reference_lr is not None:
        ax.axvline(reference_lr, color="tab:green", ls=":", label="best of the sweep")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    ax.set_ylim(0, 1.5 * max(result.losses[:5]))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def schedule_panels(
    schedules: Mapping[str, Callable[[int], float]],
    accuracy: Mapping[str, np.ndarray],
    total_steps: int,
    steps_per_epoch: int,
) -> Figure:
    """Left: each schedule's lr per step; right: validation accuracy per epoch, curves
    ``{name: (n_seeds, n_epochs)}`` (mean over seeds, each seed thin)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    steps = np.arange(total_steps)
    for name, fn in schedules.items():
        axes[0].plot(steps / steps_per_epoch, [fn(s) for s in steps], label=name)
        curves = np.atleast_2d(accuracy[name])
        _seed_lines(axes[1], np.arange(1, curves.shape[1] + 1), curves, label=name)
    axes[0].set(xlabel="epoch", ylabel="learning rate", title="the schedules (per batch)")
    axes[1].set(xlabel="epoch", ylabel="val accuracy (%)", title="after each epoch")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def log_histograms(
    draws: Mapping[str, np.ndarray], value_range: tuple[float, float], xlabel: str = "value"
) -> Figure:
    """One histogram per set of draws, on log-spaced bins over ``value_range`` and a log x axis."""
    fig, axes = plt.subplots(1, len(draws), figsize=(5 * len(draws), 3), sharey=True)
    bins = np.geomspace(*value_range, 41)
    for ax, (name, x) in zip(np.atleast_1d(axes), draws.items(), strict=True):
        ax.hist(x, bins=bins)
        ax.set(
            xscale="log", xlabel=xlabel, title=f"{name} on [{value_range[0]:g}, {value_range[1]:g}]"
        )
    np.atleast_1d(axes)[0].set_ylabel(f"count of {len(next(iter(draws.values())))} draws")
    fig.tight_layout()
    return fig
