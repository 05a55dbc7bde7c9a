"""Cascades: a cheap model answers when it is confident, the ensemble only when it is not.

An ensemble of M members costs M forward passes per image. A cascade runs one cheap model first and
asks the rest of the ensemble only about the images the cheap model is unsure of (Viola and Jones
2001 for the idea; Wang et al. 2022, *Wisdom of Committees*, https://arxiv.org/abs/2012.01988, for
cascades of ensemble members)::

    confidence_i = max_c p_cheap(c | x_i)
    answer_i     = p_cheap(x_i)        if confidence_i >= threshold
                   p_ensemble(x_i)     otherwise ("deferred")
    cost         = cheap_cost + deferred share * extra_cost      forward passes per image

When the cheap model is itself a member (the default here), a deferred image costs the other M - 1
members (``extra_cost = M - 1``), so threshold 0 costs 1 pass (the cheap model alone) and threshold
above 1 costs M (the full ensemble). Probabilities are (N, C) tensors; labels (N,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_utils.ensemble import average_probabilities

DEFAULT_THRESHOLDS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.01)


@dataclass(frozen=True)
class CascadePoint:
    """One threshold of a cascade: accuracy, share of images deferred, cost per image (passes)."""

    threshold: float
    accuracy: float
    deferred: float
    cost: float


def _check_probs(cheap: torch.Tensor, ensemble: torch.Tensor) -> None:
    if cheap.ndim != 2 or cheap.shape != ensemble.shape:
        raise ValueError(
            "cheap and ensemble probabilities must both be (N, C), got "
            f"{tuple(cheap.shape)} and {tuple(ensemble.shape)}"
        )


def cascade_probs(
    cheap: torch.Tensor, ensemble: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cascade's probabilities (N, C) and the deferred mask (N,) bool: the cheap model's row
    where its top probability is >= ``threshold``, the ensemble's row elsewhere."""
    _check_probs(cheap, ensemble)
    deferred = cheap.max(dim=1).values < threshold
    return torch.where(deferred[:, None], ensemble, cheap), deferred


def cascade_curve(
    cheap: torch.Tensor,
    ensemble: torch.Tensor,
    labels: torch.Tensor,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    cheap_cost: float = 1.0,
    extra_cost: float = 4.0,
) -> list[CascadePoint]:
    """``CascadePoint`` for each threshold (see the module docstring for the cost)."""
    points = []
    for t in thresholds:
        probs, deferred = cascade_probs(cheap, ensemble, t)
        share = float(deferred.float().mean())
        points.append(
            CascadePoint(
                float(t),
                float((probs.argmax(dim=1) == labels).float().mean()),
                share,
                cheap_cost + share * extra_cost,
            )
        )
    return points


def cheapest_within(
    points: Sequence[CascadePoint], target: float, tolerance: float
) -> CascadePoint:
    """The cheapest point whose accuracy is at least ``target - tolerance`` (pick it on validation
    images, then score that threshold on test images). Raises if no point qualifies."""
    good = [p for p in points if p.accuracy >= target - tolerance]
    if not good:
        raise ValueError(f"no threshold reaches {target - tolerance:.4f}")
    return min(good, key=lambda p: (p.cost, -p.accuracy))


@torch.no_grad()
def cascade_predict(
    cheap: nn.Module,
    rest: Sequence[nn.Module],
    images: torch.Tensor,
    threshold: float,
    average: Callable[[Sequence[torch.Tensor]], torch.Tensor] = average_probabilities,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference as a cascade really runs it: ``cheap`` on every image, the ``rest`` of the ensemble
    only on the deferred ones, whose answer is ``average`` of all members' logits (cheap included).
    Returns (probabilities (N, C), deferred mask (N,)); models are used as given (call .eval())."""
    cheap_logits = cheap(images)
    probs = torch.softmax(cheap_logits, dim=1)
    deferred = probs.max(dim=1).values < threshold
    if deferred.any():
        hard = images[deferred]
        probs[deferred] = average([cheap_logits[deferred]] + [m(hard) for m in rest]).to(
            probs.dtype
        )
    return probs, deferred


def as_rows(points: Sequence[CascadePoint]) -> list[dict[str, float]]:
    """Plain dicts (for JSON): threshold, accuracy, deferred, cost."""
    return [vars(p).copy() for p in points]


def plot_cascade(
    points: Sequence[CascadePoint], ensemble_cost: float, picked: CascadePoint | None = None
):  # noqa: ANN201
    """Accuracy against cost per image (forward passes), one point per threshold, labelled."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    cost = np.array([p.cost for p in points])
    acc = np.array([100 * p.accuracy for p in points])
    ax.plot(cost, acc, "o-", label="cascade")
    for p in points:
        ax.annotate(
            f"{p.threshold:g}",
            (p.cost, 100 * p.accuracy),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    if picked is not None:
        ax.plot([picked.cost], [100 * picked.accuracy], "r*", ms=12, label="picked on validation")
    ax.axvline(ensemble_cost, color="gray", ls=":", label="full ensemble")
    ax.set(xlabel="forward passes per image", ylabel="accuracy (%)")
    ax.set_title("cascade: cheap member first, ensemble when unsure (labels: threshold)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
