"""How far one validation split's estimate can land from a k-fold mean's, over re-splits of the data.

The Deep Learning book (Goodfellow, Bengio and Courville 2016, section 5.3.1) recommends k-fold
cross-validation when the dataset is too small for a large validation split. The measurement:
split the same data into k stratified folds ``repeats`` times with different shuffles, train and
score one model per fold, and collect the validation scores ``s[r, f]`` (repeats, k). Each ``s[r, f]``
is what a single 1/k validation split would have reported; ``mean_f s[r, f]`` is the k-fold estimate.
Against the grand mean ``m`` of all ``repeats * k`` scores (the best estimate of the procedure's
expected score), per re-split ``r``::

    single[r] = mean_f |s[r, f] - m|      how far a single split lands, on average over its k folds
    kfold[r]  = |mean_f s[r, f] - m|      how far the k-fold mean lands

``course_utils.evidence.compare_paired(kfold, single, better="lower", ...)`` then compares the two
over the same re-splits. This measures how much an estimate depends on the split; its uncertainty
about *new* data is in addition the binomial standard error sqrt(p (1 - p) / n) of the n validated
images (n = N / k for one split, N for the k-fold mean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_utils.tuning import kfold_indices

ScoreFold = Callable[[np.ndarray, np.ndarray, int], float]


def repeated_kfold(
    labels: Sequence[Any] | np.ndarray | Any,
    score_fold: ScoreFold,
    *,
    k: int = 5,
    repeats: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Validation scores (repeats, k): ``score_fold(train_index, val_index, run_seed)`` for each fold
    of ``repeats`` stratified k-fold splits of ``labels`` (shuffled with ``seed + r``);
    ``run_seed = 100 * (seed + r) + f`` seeds that fold's training."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    scores = np.empty((repeats, k))
    for r in range(repeats):
        for f, (train_index, val_index) in enumerate(kfold_indices(labels, k=k, seed=seed + r)):
            scores[r, f] = float(score_fold(train_index, val_index, 100 * (seed + r) + f))
    return scores


def deviations(fold_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(single, kfold)``, each (repeats,): the mean distance of one split's score, and the distance
    of the k-fold mean, from the grand mean of ``fold_scores`` (repeats, k) (module docstring)."""
    scores = np.asarray(fold_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"fold_scores must have shape (repeats, k >= 2), got {scores.shape}")
    grand = scores.mean()
    single = np.abs(scores - grand).mean(axis=1)
    kfold = np.abs(scores.mean(axis=1) - grand)
    return single, kfold


def binomial_standard_error(p: float, n: int) -> float:
    """sqrt(p (1 - p) / n): the standard error of an accuracy ``p`` measured on ``n`` images."""
    if n < 1 or not 0 <= p <= 1:
        raise ValueError(f"need 0 <= p <= 1 and n >= 1, got p={p}, n={n}")
    return float(np.sqrt(p * (1 - p) / n))
