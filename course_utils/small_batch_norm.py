"""Batch norm starved by a small batch, against group norm, which does not look at the batch.

Batch norm normalises each feature with the mean and variance of the current batch, and at test time
(eval mode) with running averages of them. How many values feed one statistic is what matters::

    values per statistic = batch size x H x W     (BatchNorm2d on an H x W feature map)
                         = batch size             (BatchNorm1d on the features of an MLP)

With batch 2 on an MLP, each statistic comes from two numbers: the normalised feature is -1 for one
example and +1 for the other whatever their values (``two_values_normalised``), so training sees almost
nothing of the feature's value, and the running statistics used at test time describe a different net.
Group norm (Wu & He 2018, https://arxiv.org/abs/1803.08494) normalises each example over groups of its
own features, the same in training and at test time, at any batch size.

``norm_mlp`` builds the experiment's net (Linear -> BN or GN -> ReLU, ``depth`` times, then Linear);
``batch_size_sweep`` trains it with both norms at several batch sizes and seeds (the same number of
epochs at every batch size, as in the paper); ``NormSweep.compare`` gives the paired GN - BN effect at
one batch size; ``plot_norm_sweep`` draws the measured error next to the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from course_utils.evidence import Comparison, compare_paired
from course_utils.progress import progress_bar
from course_utils.runtime import grading, seed_everything
from course_utils.train import SplitLike, fit

NORMS = ("batch", "group")
LABELS = {"batch": "BatchNorm", "group": "GroupNorm"}

# Wu & He 2018, Table 2 (and Figure 1): ResNet-50 on ImageNet, validation error (%) by images per GPU.
PAPER_ERROR = {
    "batch": {32: 23.6, 16: 23.7, 8: 24.8, 4: 27.3, 2: 34.7},
    "group": {32: 24.1, 16: 24.2, 8: 24.0, 4: 24.2, 2: 24.1},
}


def feature_norm(kind: str, features: int, groups: int = 8) -> nn.Module:
    """``"batch"`` -> ``nn.BatchNorm1d(features)``; ``"group"`` -> ``nn.GroupNorm(groups, features)``
    (on (N, features) inputs: per example, over groups of ``features // groups`` features)."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "group":
        if features % groups:
            raise ValueError(f"features ({features}) must be divisible by groups ({groups})")
        return nn.GroupNorm(groups, features)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def norm_mlp(
    in_features: int,
    num_classes: int,
    norm: str,
    width: int = 64,
    depth: int = 2,
    groups: int = 8,
) -> nn.Sequential:
    """Flatten -> [Linear(no bias) -> norm -> ReLU] x ``depth`` -> Linear(width, num_classes).

    The norm layer's shift replaces the linear layer's bias. Input (N, *) with prod(*) = in_features.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = in_features
    for _ in range(depth):
        layers += [
            nn.Linear(width_in, width, bias=False),
            feature_norm(norm, width, groups),
            nn.ReLU(),
        ]
        width_in = width
    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)


def two_values_normalised(a: float, b: float, eps: float = 1e-5) -> tuple[float, float]:
    """What BatchNorm1d's training mode makes of one feature in a batch of two: ``(a', b')``.

    The mean is (a+b)/2 and the biased variance ((a-b)/2)^2, so the outputs are -1 and +1 (for
    |a - b| >> sqrt(eps)), whatever a and b are: only their order survives.
    """
    x = torch.tensor([[a], [b]], dtype=torch.float64)
    y = nn.functional.batch_norm(x, None, None, training=True, eps=eps)
    return float(y[0, 0]), float(y[1, 0])


@dataclass
class NormSweep:
    """Validation accuracy of each (norm, batch size), one value per seed (same seeds everywhere)."""

    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    accuracy: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)

    def error(self, norm: str, batch_size: int) -> np.ndarray:
        """Validation error (%) per seed."""
        return 100 * (1 - self.accuracy[norm][batch_size])

    def as_dict(self) -> dict[str, dict[str, list[float]]]:
        """``{norm: {str(batch size): [accuracy per seed]}}``, for the saved results (JSON)."""
        return {
            n: {str(b): a.tolist() for b, a in by_batch.items()}
            for n, by_batch in self.accuracy.items()
        }

    def compare(self, batch_size: int, min_effect: float = 0.01) -> Comparison:
        """GN - BN validation accuracy at ``batch_size``, paired by seed (higher: GN better)."""
        return compare_paired(
            self.accuracy["group"][batch_size],
            self.accuracy["batch"][batch_size],
            min_effect=min_effect,
        )


def batch_size_sweep(
    make_model,  # noqa: ANN001 - Callable[[str], nn.Module], a norm kind -> a fresh model
    train: SplitLike,
    val: SplitLike,
    *,
    batch_sizes: Sequence[int] = (2, 8, 32),
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 1,
    lr: float = 3e-4,
) -> NormSweep:
    """Train ``make_model(norm)`` for each norm, batch size and seed; record eval-mode val accuracy.

    Every run sees the same images for ``epochs`` epochs (equal epochs, the paper's protocol: batch 2
    takes 16 times more steps than batch 32), with Adam at ``lr``; ``seed`` seeds both the weights and
    the batch order, so BN and GN of one seed start from the same random state. Evaluation uses
    ``fit``'s eval mode: BN with its running statistics. One progress bar counts the runs.
    """
    sweep = NormSweep(tuple(batch_sizes), tuple(seeds))
    runs: dict[tuple[str, int], list[float]] = {(n, b): [] for n in NORMS for b in batch_sizes}
    jobs = [(b, seed, n) for b in batch_sizes for seed in seeds for n in NORMS]
    device = train.labels.device
    for batch_size, seed, norm in progress_bar(jobs, desc="BN vs GN", show=not grading()):
        seed_everything(seed)
        model = make_model(norm).to(device)
        history = fit(
            model,
            train,
            val,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            progress=False,
        )
        runs[norm, batch_size].append(history.val_accuracy[-1])
    sweep.accuracy = {n: {b: np.asarray(runs[n, b]) for b in batch_sizes} for n in NORMS}
    return sweep


def plot_norm_sweep(sweep: NormSweep, axes: Sequence[plt.Axes] | None = None) -> Sequence[plt.Axes]:
    """Left: the paper's ImageNet error by batch size; right: the measured error (mean and seeds)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for norm in NORMS:
        paper = PAPER_ERROR[norm]
        axes[0].plot(list(paper), list(paper.values()), "o-", label=LABELS[norm])
        errors = np.stack([sweep.error(norm, b) for b in sweep.batch_sizes])  # (batches, seeds)
        line = axes[1].plot(sweep.batch_sizes, errors.mean(axis=1), "o-", label=LABELS[norm])
        for column in errors.T:
            axes[1].plot(sweep.batch_sizes, column, ".", color=line[0].get_color(), alpha=0.5)
    axes[0].set(title="Wu & He 2018: ResNet-50, ImageNet", ylabel="validation error (%)")
    axes[1].set(
        title=f"this MLP: mean and {len(sweep.seeds)} seeds (dots)", ylabel="validation error (%)"
    )
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size (images per GPU in the paper)")
        ax.legend(fontsize=8)
    plt.tight_layout()
    return axes
