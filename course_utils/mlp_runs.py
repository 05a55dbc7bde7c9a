"""Quick MLP trainings for tuning experiments: one call per run, seeds and sweeps in one line.

A search or a sweep trains the same small model dozens of times, changing one or two
hyper-parameters. ``MLPRuns`` holds what stays fixed (the data, the default width, batch size and
number of epochs) and trains ``MLP(in_features, (width,), num_classes)`` with AdamW::

    runs = MLPRuns(train, val, num_classes=10, epochs=3)
    acc = runs.accuracy(3e-3, weight_decay=1e-4, seed=1)      # final validation accuracy
    grid = over_seeds(lambda seed: [runs.accuracy(lr, seed=seed) for lr in lrs], seeds=range(3))

Every run is seeded (initialisation and shuffling), so two calls with the same arguments give the
same number and two arms with the same seed are paired. A run whose final validation loss is not
finite (it diverged) scores 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from course_utils.models import MLP
from course_utils.progress import progress_bar
from course_utils.runtime import grading, seed_everything
from course_utils.train import History, SplitLike, fit, predict


@dataclass
class MLPRuns:
    """Train one-hidden-layer MLPs with AdamW on fixed data (see the module docstring).

    Defaults of every run: ``width`` 128, ``batch_size`` 64, ``epochs`` 3, weight decay 0, constant
    learning rate, seed 0.
    """

    train: SplitLike
    val: SplitLike
    num_classes: int
    width: int = 128
    batch_size: int = 64
    epochs: int = 3

    @property
    def in_features(self) -> int:
        return math.prod(self.train.images.shape[1:])

    def model(self, width: int | None = None, seed: int = 0) -> nn.Module:
        """``MLP(in_features, (width,), num_classes)`` initialised from ``seed``, on the data's device."""
        seed_everything(seed)
        model = MLP(self.in_features, (width or self.width,), self.num_classes)
        return model.to(self.train.images.device)

    def trained(
        self,
        lr: float,
        *,
        weight_decay: float = 0.0,
        width: int | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        train: SplitLike | None = None,
        val: SplitLike | None = None,
        lr_at_step: Callable[[int], float] | None = None,
    ) -> History:
        """One training run; returns ``(model, History)`` (per-epoch losses and accuracies).

        ``lr_at_step(step)``, if given, sets the learning rate of optimizer step ``step`` (0, 1, ...):
        a schedule. ``train``/``val`` replace the default splits for this run (k-fold).
        """
        model = self.model(width, seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = None
        if lr_at_step is not None:
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: lr_at_step(step) / lr
            )
        history = fit(
            model,
            self.train if train is None else train,
            self.val if val is None else val,
            epochs=self.epochs if epochs is None else epochs,
            batch_size=batch_size or self.batch_size,
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_per_batch=True,
            seed=seed,
            progress=False,
        )
        return model, history

    def history(self, lr: float, **kwargs: Any) -> History:
        """The ``History`` of ``trained(lr, **kwargs)`` (the model is dropped)."""
        return self.trained(lr, **kwargs)[1]

    def correct(self, lr: float, **kwargs: Any) -> np.ndarray:
        """Per validation image, 1.0 if the model of ``trained(lr, **kwargs)`` classifies it right,
        else 0.0: shape (n_val,), paired image by image between two runs (``compare_bootstrap``)."""
        model, _ = self.trained(lr, **kwargs)
        val = self.val if kwargs.get("val") is None else kwargs["val"]
        hits = predict(model, val.images).argmax(dim=1) == val.labels
        return hits.float().cpu().numpy()

    def accuracy(self, lr: float, **kwargs: Any) -> float:
        """Final validation accuracy of ``history(lr, **kwargs)``; 0.0 for a diverged run."""
        history = self.history(lr, **kwargs)
        return history.val_accuracy[-1] if math.isfinite(history.val_loss[-1]) else 0.0

    def objective(self, params: Mapping[str, Any], seed: int = 0) -> float:
        """A search objective: ``accuracy`` with ``params["lr"]`` and, if present, "weight_decay",
        "width" and "batch_size"."""
        extra = {k: params[k] for k in ("weight_decay", "width", "batch_size") if k in params}
        if "width" in extra:
            extra["width"] = int(extra["width"])
        return self.accuracy(float(params["lr"]), seed=seed, **extra)

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """Optimizer steps in one epoch of the default training split."""
        return math.ceil(len(self.train.labels) / (batch_size or self.batch_size))

    def sweep(
        self,
        name: str,
        values: Iterable[Any],
        seeds: Iterable[int],
        *,
        desc: str | None = None,
        **fixed: Any,
    ) -> np.ndarray:
        """Final validation accuracy with ``name`` set to each of ``values`` (the others at ``fixed``,
        which must hold "lr" unless ``name`` is "lr"), on each seed: shape (n_seeds, n_values).
        ``desc`` labels a progress bar over the seeds (none if None)."""

        def run(value: Any, seed: int) -> float:
            params = {**fixed, name: value}
            lr = params.pop("lr")
            return self.accuracy(lr, seed=seed, **params)

        return sweep(run, values, seeds, desc=desc)

    def best_lr(self, lrs: Iterable[float], seed: int = 0, **kwargs: Any) -> float:
        """The learning rate of ``lrs`` with the best final validation accuracy (the first on a tie)."""
        lrs = list(lrs)
        scores = [self.accuracy(lr, seed=seed, **kwargs) for lr in lrs]
        return lrs[int(np.argmax(scores))]

    def curves(
        self, lr: float, seeds: Iterable[int], *, desc: str | None = None, **kwargs: Any
    ) -> np.ndarray:
        """Validation accuracy after each epoch, one run per seed: shape (n_seeds, n_epochs)."""
        return over_seeds(
            lambda seed: self.history(lr, seed=seed, **kwargs).val_accuracy, seeds, desc=desc
        )

    def seconds_per_epoch(self, lr: float, **kwargs: Any) -> float:
        """Wall-clock seconds of one epoch (evaluation included) with these settings."""
        return seconds(lambda: self.history(lr, epochs=1, **kwargs))

    def selection_regrets(
        self,
        configs: Mapping[str, Mapping[str, Any]],
        *,
        pool_size: int,
        k: int = 5,
        epochs: int | None = None,
        seed: int = 0,
    ) -> tuple[float, float]:
        """``selection_regrets`` on a random pool of ``pool_size`` training images drawn with ``seed``."""
        index = np.random.default_rng(seed).permutation(len(self.train.labels))[:pool_size]
        pool = self.train.subset(index) if hasattr(self.train, "subset") else None
        if pool is None:
            raise TypeError("the training split must have .subset(index) (a course_utils Split)")
        return selection_regrets(self, configs, pool, k=k, epochs=epochs, seed=seed)


def over_seeds(
    run: Callable[[int], Any], seeds: Iterable[int], *, desc: str | None = None
) -> np.ndarray:
    """``np.array([run(seed) for seed in seeds])``: shape (n_seeds, ...). With a ``desc``, a progress
    bar over the seeds (never under nbgrader, where it would only clutter the feedback)."""
    seeds = list(seeds)
    show = desc is not None and not grading()
    return np.array([run(seed) for seed in progress_bar(seeds, desc=desc, show=show)])


def sweep(
    run: Callable[[Any, int], float],
    values: Iterable[Any],
    seeds: Iterable[int],
    *,
    desc: str | None = None,
) -> np.ndarray:
    """``run(value, seed)`` for every seed and value: an array of shape (n_seeds, n_values)."""
    values = list(values)
    return over_seeds(lambda seed: [run(v, seed) for v in values], seeds, desc=desc)


def spread(curves: np.ndarray) -> np.ndarray:
    """Per seed, best minus worst value of a sweep: ``curves`` (n_seeds, n_values) -> (n_seeds,)."""
    curves = np.asarray(curves, dtype=np.float64)
    return curves.max(axis=-1) - curves.min(axis=-1)


def winner(scores: Mapping[str, float]) -> str:
    """The name with the highest score (the first listed on a tie)."""
    if not scores:
        raise ValueError("need at least one score")
    return max(scores, key=lambda name: scores[name])


def kfold_pick_regret(
    fold_scores: Mapping[str, np.ndarray], arbiter: Mapping[str, float]
) -> tuple[float, float]:
    """How much each way of choosing loses against the best configuration by ``arbiter``.

    ``fold_scores[name]``: the configuration's validation score on each of k folds, shape (k,);
    ``arbiter[name]``: its score on data neither method saw. Returns ``(k-fold regret, single-split
    regret)``: the arbiter's best score minus the arbiter score of the configuration picked by the
    mean over folds, and the same for the pick of each single fold, averaged over the k folds (each
    fold alone is one "single 80/20 split").
    """
    best = max(arbiter.values())
    names = list(fold_scores)
    kfold = best - arbiter[winner({n: float(np.mean(fold_scores[n])) for n in names})]
    k = len(next(iter(fold_scores.values())))
    single = [
        best - arbiter[winner({n: float(fold_scores[n][i]) for n in names})] for i in range(k)
    ]
    return float(kfold), float(np.mean(single))


def seconds(run: Callable[[], Any], repeat: int = 1) -> float:
    """Median wall-clock seconds of ``run()`` over ``repeat`` calls (inflated on a busy machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def selection_regrets(
    runs: MLPRuns,
    configs: Mapping[str, Mapping[str, Any]],
    pool: Any,
    *,
    k: int = 5,
    epochs: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """k-fold against a single split for picking one of ``configs`` on the small split ``pool``.

    Each config (``{"lr": .., "width": ..}``) is trained on k-1 folds and scored on the k-th, for
    each of the k stratified folds of ``pool`` (``tuning.kfold_indices``, shuffled with ``seed``),
    and once on the whole pool scored on ``runs.val``, the arbiter. Returns
    ``kfold_pick_regret(fold_scores, arbiter)``: (k-fold regret, mean single-split regret).
    """
    from course_utils.tuning import kfold_indices

    folds = kfold_indices(pool.labels, k=k, seed=seed)

    def score(config: Mapping[str, Any], train: Any, val: Any) -> float:
        extra = {key: v for key, v in config.items() if key != "lr"}
        return runs.accuracy(config["lr"], epochs=epochs, train=train, val=val, seed=seed, **extra)

    fold_scores = {
        name: np.array([score(c, pool.subset(tr), pool.subset(va)) for tr, va in folds])
        for name, c in configs.items()
    }
    arbiter = {name: score(c, pool, runs.val) for name, c in configs.items()}
    return kfold_pick_regret(fold_scores, arbiter)


def as_json(numbers: Any) -> Any:
    """``numbers`` with NumPy arrays and scalars turned into lists and floats (for ``save_results``)."""
    if isinstance(numbers, Mapping):
        return {str(k): as_json(v) for k, v in numbers.items()}
    if isinstance(numbers, (list, tuple)):
        return [as_json(v) for v in numbers]
    if isinstance(numbers, np.ndarray):
        return numbers.tolist()
    if isinstance(numbers, np.generic):
        return numbers.item()
    return numbers
