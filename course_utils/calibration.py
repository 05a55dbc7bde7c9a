"""Calibration of a classifier: does a confidence of 0.8 mean right 80% of the time?

Shared interface: ``probs`` is (N, C) softmax probabilities (or ``logits`` (N, C) where stated),
``labels`` (N,) integer classes, on any device; results come back as Python floats or NumPy arrays.
The confidence of a prediction is its top probability, ``conf_i = max_c p_ic``; ``hit_i`` is 1 when
that class is the label::

    gap  = mean(conf) - mean(hit)                         signed: > 0 over-confident, < 0 under-
    ECE  = sum_b (n_b / N) * |acc_b - conf_b|             equal-width bins b of confidence (Guo 2017)

An unsigned ECE hides which way a model is wrong; the signed gap (and the reliability diagram, one bar
of accuracy per bin against the diagonal) shows it. **Temperature scaling** (Guo et al. 2017) divides
the logits by one number T > 0 fitted on validation data to minimise the cross-entropy: T > 1 softens
an over-confident model, T < 1 sharpens an under-confident one; the argmax, hence the accuracy, does
not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes

BINS = 10


@dataclass(frozen=True)
class Bins:
    """Per-bin mean confidence, accuracy and count (NumPy, shape (bins,); NaN where a bin is empty)."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, len(self.count) + 1)


def _check(probs: torch.Tensor, labels: torch.Tensor) -> None:
    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"need probs (N, C) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}"
        )
    if probs.shape[0] == 0:
        raise ValueError("need at least one prediction")


def confidence_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> Bins:
    """Bin b holds the predictions with confidence in [b/bins, (b+1)/bins) (the last bin includes 1)."""
    _check(probs, labels)
    confidence, predicted = probs.detach().double().max(dim=1)
    hit = (predicted == labels).double()
    which = torch.clamp((confidence * bins).long(), max=bins - 1)
    count = torch.bincount(which, minlength=bins).double()
    conf = torch.bincount(which, weights=confidence, minlength=bins) / count
    acc = torch.bincount(which, weights=hit, minlength=bins) / count
    return Bins(conf.cpu().numpy(), acc.cpu().numpy(), count.cpu().numpy())


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, bins: int = BINS
) -> float:
    """ECE = sum over bins of (n_b / N) |acc_b - conf_b| (0 = calibrated; the unsigned summary)."""
    b = confidence_bins(probs, labels, bins)
    weight = b.count / b.count.sum()
    return float(np.nansum(weight * np.abs(b.accuracy - b.confidence)))


def confidence_gap(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean confidence minus accuracy: > 0 over-confident, < 0 under-confident (same units as both)."""
    _check(probs, labels)
    confidence, predicted = probs.detach().double().max(dim=1)
    return float(confidence.mean() - (predicted == labels).double().mean())


def fit_temperature(
    logits: torch.Tensor, labels: torch.Tensor, low: float = 0.05, high: float = 20.0
) -> float:
    """The T in [low, high] minimising mean cross-entropy of ``logits / T`` (fit it on validation data).

    A 1-D convex problem in log T: golden-section search on log T, in float64, 60 iterations (about
    1e-12 relative precision), deterministic.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"need logits (N, C) and labels (N,), got {tuple(logits.shape)}")
    z = logits.detach().double()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / np.exp(log_t), labels))

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return float(np.exp((a + b) / 2))


def reliability_diagram(
    probs: torch.Tensor, labels: torch.Tensor, *, title: str = "", ax: Axes | None = None
) -> Axes:
    """Bars of accuracy per confidence bin, the diagonal, and the signed gap in the title.

    A bar below the diagonal is an over-confident bin (confidence above accuracy)."""
    ax = ax if ax is not None else plt.subplots(figsize=(3.4, 3.2))[1]
    b = confidence_bins(probs, labels)
    centers = (b.edges[:-1] + b.edges[1:]) / 2
    ax.bar(centers, np.nan_to_num(b.accuracy), width=1 / len(centers), edgecolor="k", alpha=0.7)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(b.confidence, b.accuracy, "r.", ms=6)
    gap = confidence_gap(probs, labels)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy in bin")
    ax.set_title(
        f"{title}\ngap {100 * gap:+.1f} pts, ECE {100 * expected_calibration_error(probs, labels):.1f}",
        fontsize=8,
    )
    return ax
