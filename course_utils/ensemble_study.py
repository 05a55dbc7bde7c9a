"""Ensemble experiments of stage 6: members, size curves, diversity and snapshot runs.

An ensemble of M models averages their probabilities, ``p = (1/M) sum_m softmax(z_m)``. What it buys
is measured **per image** on one evaluation split, so the comparison is paired (the same images for
both arms)::

    gain       = mean_i [ensemble correct_i] - mean_i [mean_m member_m correct_i]
    disagreement = mean over member pairs (a, b) of mean_i [argmax z_a,i != argmax z_b,i]
    error reduction = 1 - ensemble error / mean member error

``ensemble_gain`` puts the gain through ``course_utils.evidence.compare_paired`` (one pair per image).
Members come from ``train_member``: a small CNN (``small_cnn``) trained by ``train_cosine`` (Adam,
cosine learning rate stepped per batch, one cycle or warm restarts), with the initialisation seed and
the data-order seed chosen separately, so that "members differ in seed" can be split into "differ in
initialisation" and "differ in the order they see the data".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course_utils.data import Split
from course_utils.ensemble import SnapshotCollector, average_probabilities, snapshot_models
from course_utils.evidence import Comparison, compare_paired
from course_utils.runtime import seed_everything
from course_utils.train import History, fit

Average = Callable[[Sequence[torch.Tensor]], torch.Tensor]


def small_cnn(image_shape: Sequence[int], num_classes: int, width: int = 8) -> nn.Sequential:
    """[conv3x3 -> ReLU -> maxpool2] x 2 (``width``, 2 ``width`` channels) -> Linear; logits."""
    channels, height, width_px = image_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (height // 4) * (width_px // 4), num_classes),
    )


def train_cosine(
    model: nn.Module,
    split: Split,
    *,
    epochs: int,
    lr: float = 1e-2,
    restart_every: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_epoch_end: Callable[[int, nn.Module, History], None] | None = None,
) -> History:
    """Adam with ``CosineAnnealingWarmRestarts`` stepped per batch: one cosine cycle over the run, or
    a restart every ``restart_every`` epochs. ``seed`` sets the data order. Returns the History."""
    steps_per_epoch = math.ceil(len(split) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    cycle = steps_per_epoch * (restart_every or epochs)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cycle)
    return fit(
        model,
        split,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_per_batch=True,
        transform=transform,
        seed=seed,
        on_epoch_end=on_epoch_end,
        progress=False,
    )


def train_member(
    split: Split,
    num_classes: int,
    *,
    init_seed: int,
    order_seed: int,
    epochs: int,
    width: int = 8,
    lr: float = 1e-2,
) -> nn.Module:
    """A ``small_cnn(width)`` initialised from ``init_seed``, trained by ``train_cosine`` with the
    data order of ``order_seed``; returned in eval mode on the split's device."""
    seed_everything(init_seed)
    model = small_cnn(split.images.shape[1:], num_classes, width).to(split.images.device)
    train_cosine(model, split, epochs=epochs, lr=lr, seed=order_seed)
    return model.eval()


def correct(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """0/1 correctness per example (N,) of probabilities or logits (N, C)."""
    return (probs.argmax(dim=1) == labels).cpu().numpy().astype(np.float64)


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of examples whose arg-max is the label."""
    return float(correct(probs, labels).mean())


def nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Cross-entropy of probabilities (not logits): -mean log p(true class)."""
    return float(-probs.gather(1, labels[:, None]).clamp_min(1e-12).log().mean())


def disagreement(logits: Sequence[torch.Tensor]) -> float:
    """Mean over member pairs of the share of examples whose predicted classes differ (0 for M=1)."""
    predictions = [z.argmax(dim=1) for z in logits]
    pairs = list(itertools.combinations(predictions, 2))
    if not pairs:
        return 0.0
    return float(np.mean([float((a != b).float().mean()) for a, b in pairs]))


@dataclass(frozen=True)
class EnsembleResult:
    """An ensemble against its members on one split: accuracies, disagreement, error reduction and
    the paired per-image comparison (ensemble - mean member)."""

    member_accuracy: list[float]
    ensemble_accuracy: float
    disagreement: float
    error_reduction: float
    comparison: Comparison


def ensemble_gain(
    logits: Sequence[torch.Tensor],
    labels: torch.Tensor,
    *,
    min_effect: float,
    average: Average = average_probabilities,
) -> EnsembleResult:
    """The ensemble of ``logits`` (M tensors (N, C)) vs its average member, paired per example."""
    probs = average(list(logits))
    members = np.stack([correct(z, labels) for z in logits])
    ensemble = correct(probs, labels)
    member_error = 1 - members.mean()
    reduction = 1 - (1 - ensemble.mean()) / member_error if member_error > 0 else 0.0
    cmp = compare_paired(ensemble, members.mean(axis=0), min_effect=min_effect)
    return EnsembleResult(
        [float(a) for a in members.mean(axis=1)],
        float(ensemble.mean()),
        disagreement(logits),
        float(reduction),
        cmp,
    )


def size_curve(
    logits: Sequence[torch.Tensor], labels: torch.Tensor, average: Average = average_probabilities
) -> tuple[list[float], list[float]]:
    """Accuracy and cross-entropy of ensembles of M = 1..len(logits) members, each averaged over
    every subset of M members (so the curve does not depend on the members' order)."""
    accs, losses = [], []
    for m in range(1, len(logits) + 1):
        probs = [
            average([logits[i] for i in s]) for s in itertools.combinations(range(len(logits)), m)
        ]
        accs.append(float(np.mean([accuracy(p, labels) for p in probs])))
        losses.append(float(np.mean([nll(p, labels) for p in probs])))
    return accs, losses


def plot_size_curve(accs: Sequence[float], losses: Sequence[float], member_accs: Sequence[float]):  # noqa: ANN201
    """Accuracy and cross-entropy against the number of members (two panels); returns the figure."""
    sizes = range(1, len(accs) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].plot(sizes, 100 * np.array(accs), "o-", label="ensemble (mean over subsets)")
    axes[0].plot(
        [1] * len(member_accs), 100 * np.array(member_accs), "x", color="gray", label="each member"
    )
    axes[0].set(xlabel="members M", ylabel="accuracy (%)", title="accuracy vs ensemble size")
    axes[0].legend(fontsize=8)
    axes[1].plot(sizes, losses, "o-")
    axes[1].set(xlabel="members M", ylabel="cross-entropy", title="loss vs ensemble size")
    for ax in axes:
        ax.set_xticks(list(sizes))
    fig.tight_layout()
    return fig


def plot_diversity(results: dict[str, EnsembleResult]):  # noqa: ANN201
    """Gain (with its 95% interval) against member disagreement, one point per kind of ensemble."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, r in results.items():
        c = r.comparison
        ax.errorbar(
            100 * r.disagreement,
            100 * c.effect,
            yerr=[[100 * (c.effect - c.low)], [100 * (c.high - c.effect)]],
            fmt="o",
            capsize=3,
            label=name,
        )
    ax.axhline(0, color="gray", lw=0.8)
    ax.set(
        xlabel="member disagreement (% of images)",
        ylabel="gain over the average member (points)",
        title="what diversity buys",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def diversity_table(results: dict[str, EnsembleResult]) -> str:
    """Markdown table: kind of ensemble, members' accuracy, ensemble accuracy, disagreement, error
    reduction and the paired gain with its interval."""
    lines = [
        "| members differ in | member accuracy (mean) | ensemble | disagreement | errors removed "
        "| gain (95% interval) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {100 * np.mean(r.member_accuracy):.1f}% | {100 * r.ensemble_accuracy:.1f}% "
            f"| {100 * r.disagreement:.1f}% | {r.error_reduction:.0%} "
            f"| {r.comparison.text(100, ' points', 1)} |"
        )
    return "\n".join(lines)


def snapshot_run(
    split: Split,
    num_classes: int,
    *,
    cycles: int,
    cycle_epochs: int,
    seed: int = 0,
    width: int = 8,
    lr: float = 1e-2,
    batch_size: int = 64,
) -> list[nn.Module]:
    """One ``small_cnn`` trained for ``cycles * cycle_epochs`` epochs with a cosine restart every
    ``cycle_epochs`` epochs; returns the snapshot taken at the end of every cycle (eval mode)."""
    steps_per_epoch = math.ceil(len(split) / batch_size)
    collector = SnapshotCollector.for_schedule(
        cycles * cycle_epochs * steps_per_epoch, T_0=cycle_epochs * steps_per_epoch
    )
    seed_everything(seed)
    shape, device = split.images.shape[1:], split.images.device
    model = small_cnn(shape, num_classes, width).to(device)
    train_cosine(
        model,
        split,
        epochs=cycles * cycle_epochs,
        lr=lr,
        restart_every=cycle_epochs,
        batch_size=batch_size,
        seed=seed,
        on_epoch_end=lambda epoch, m, _: collector.maybe_snapshot((epoch + 1) * steps_per_epoch, m),
    )
    return snapshot_models(
        lambda: small_cnn(shape, num_classes, width).to(device), collector.states
    )


def plot_snapshots(snapshot_accs: Sequence[float], last_k_accs: Sequence[float], single_acc: float):  # noqa: ANN201
    """Each snapshot's accuracy, the ensemble of the last k, and a single run of the same cost."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ks = range(1, len(snapshot_accs) + 1)
    ax.plot(ks, 100 * np.array(snapshot_accs), "o-", label="each snapshot (end of cycle)")
    ax.plot(ks, 100 * np.array(last_k_accs), "s--", label="ensemble of the last k")
    ax.axhline(100 * single_acc, color="gray", ls=":", label="one run, same epochs, one cycle")
    ax.set(xlabel="snapshot / k", ylabel="accuracy (%)", title="snapshot ensemble, one run")
    ax.set_xticks(list(ks))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
