"""Run the arms of an experiment over the same seeds, so their results pair up seed by seed.

A comparison between two settings is paired when both arms share everything but the change: the same
seed gives the same shuffling order (and, for the same architecture, the same initial weights), so
``compare_paired(results["treatment"], results["control"])`` sees one difference per seed::

    results[arm][i] = run_arm(seed_i)       for every arm and every seed i (arms in the inner loop)

The loop shows one progress bar over all runs (hidden under nbgrader). ``fit_run`` makes the usual
``run_arm``: seed, build, train, return one number; ``correct`` gives the per-image outcomes that pair
two models on the same test images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from course_utils.progress import progress_bar
from course_utils.runtime import grading, seed_everything
from course_utils.train import SplitLike, fit, predict

T = TypeVar("T")


def paired_runs(
    arms: dict[str, Callable[[int], T]], seeds: Sequence[int], *, desc: str = "runs"
) -> dict[str, list[T]]:
    """``{arm: [run(seed) for seed in seeds]}`` for each ``arm: run`` of ``arms``.

    Seeds are the outer loop (all arms of seed 0, then of seed 1, ...), so an interrupted run still
    holds complete pairs. Needs at least one seed and one arm.
    """
    if not arms or not seeds:
        raise ValueError(f"need at least one arm and one seed, got {len(arms)} and {len(seeds)}")
    results: dict[str, list[T]] = {name: [] for name in arms}
    runs = [(seed, name) for seed in seeds for name in arms]
    for seed, name in progress_bar(runs, desc=desc, show=not grading()):
        results[name].append(arms[name](seed))
    return results


def fit_run(
    make: Callable[[], nn.Module],
    train: SplitLike,
    val: SplitLike | None = None,
    *,
    metric: str = "val_accuracy",
    measure: Callable[[nn.Module], float] | None = None,
    schedule: tuple[Callable[[torch.optim.Optimizer], Any] | None, bool] | None = None,
    lr: float = 3e-4,
    **fit_kwargs: Any,
) -> Callable[[int], float]:
    """A ``run(seed)`` for ``paired_runs``: seed everything, build ``make()`` on the data's device,
    ``fit`` it with Adam at ``lr`` (shuffling seeded with ``seed``, no progress bar) and return the
    last value of the ``History``'s ``metric`` (e.g. ``"train_loss"``), or ``measure(model)`` if given.

    ``schedule = (make_scheduler, per_batch)`` adds an LR scheduler (``make_scheduler(optimizer)``),
    stepped per batch or per epoch; other keyword arguments go to ``fit`` (``epochs``, ``batch_size``).
    """

    def run(seed: int) -> float:
        seed_everything(seed)
        model = make().to(train.images.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        make_scheduler, per_batch = schedule if schedule is not None else (None, False)
        scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
        history = fit(
            model,
            train,
            val,
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_per_batch=per_batch,
            seed=seed,
            progress=False,
            **fit_kwargs,
        )
        return float(measure(model)) if measure is not None else float(getattr(history, metric)[-1])

    return run


def correct(model: nn.Module, split: SplitLike) -> np.ndarray:
    """1.0 where ``model`` (in eval mode) predicts ``split``'s label, else 0.0: shape (N,), on the host.

    Two models scored on the same split give paired per-image outcomes for ``compare_paired``
    (McNemar's comparison: only the images on which they disagree move the effect)."""
    hits = predict(model, split.images).argmax(dim=1) == split.labels
    return hits.float().cpu().numpy()
