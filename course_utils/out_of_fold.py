"""Out-of-fold predictions: every example predicted by a model that never saw its label.

Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) ranks the labels of a dataset by how
little probability a model gives them, and the model must not have trained on the label it judges
(a network memorises wrong labels). So the examples are split into ``k`` stratified folds
(``sklearn.model_selection.StratifiedKFold`` through ``course_utils.tuning.kfold_indices``); for
each fold a fresh model trains on the other ``k - 1`` folds and predicts the held-out one::

    probabilities[i] = softmax(model_f(x_i))     f = the fold holding example i, (N, K) in all

Training per fold is ``course_utils.train.fit`` with Adam and, by default, the one-cycle learning
rate schedule (Smith and Topin 2019, ``torch.optim.lr_scheduler.OneCycleLR``: warm up to ``lr``,
anneal to almost 0), which gets a small network far in a few epochs. ``augment`` (a function of a
batch, e.g. ``course_utils.random_affine.random_affine``) is applied to training batches; with
``tta > 0`` the held-out predictions also average the probabilities of ``tta`` augmented views
(test-time augmentation). The measured wall-clock time of the whole loop is returned with the
probabilities, so a notebook can print what the ranking cost instead of typing it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data.registry import Split
from course_utils.progress import progress_bar
from course_utils.runtime import grading
from course_utils.train import fit, predict
from course_utils.tuning import kfold_indices


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold ``probabilities`` (N, K) (rows sum to 1), the ``k`` folds used, the wall-clock
    ``seconds`` the k trainings and predictions took, and the CPU ``threads`` torch used."""

    probabilities: torch.Tensor
    k: int
    seconds: float
    threads: int

    def __str__(self) -> str:
        n = len(self.probabilities)
        return (
            f"{self.k}-fold out-of-fold probabilities of {n} examples in {self.seconds:.1f} s "
            f"({self.threads} CPU thread{'s' * (self.threads > 1)})"
        )


def out_of_fold_probabilities(
    images: torch.Tensor,
    labels: torch.Tensor,
    make_model: Callable[[], nn.Module],
    *,
    k: int = 5,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    one_cycle: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tta: int = 0,
    label_smoothing: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> OutOfFold:
    """Out-of-fold probabilities of ``images`` (N, C, H, W) with integer ``labels`` (N,).

    For fold f (seed ``seed + f`` for the weights, the shuffling and the augmentation) a fresh
    ``make_model()`` (moved to the images' device) trains for ``epochs`` with Adam at ``lr``
    (the peak of the one-cycle schedule if ``one_cycle``, else constant), batches of
    ``batch_size``, cross-entropy with ``label_smoothing``, ``augment`` on every training batch;
    then predicts its held-out fold, averaging the probabilities of the plain images and ``tta``
    augmented views. The folds are stratified by label, shuffled with ``seed``. A progress bar
    counts the folds (``progress``; never under nbgrader). Returns an ``OutOfFold``.
    """
    if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"labels must be a tensor of shape ({len(images)},), got "
            f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}"
        )
    if epochs < 1 or tta < 0:
        raise ValueError(f"need epochs >= 1 and tta >= 0, got epochs={epochs}, tta={tta}")
    if tta and augment is None:
        raise ValueError("test-time augmentation (tta > 0) needs an augment function")
    start = time.perf_counter()
    folds = kfold_indices(labels, k=k, seed=seed)
    loss_fn = partial(F.cross_entropy, label_smoothing=label_smoothing)
    probabilities: torch.Tensor | None = None
    bar = progress_bar(folds, desc=f"{k} folds", show=progress and not grading())
    for fold, (train_index, held_index) in enumerate(bar):
        torch.manual_seed(seed + fold)
        model = make_model().to(images.device)
        train_idx = torch.as_tensor(train_index, device=images.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        steps = epochs * math.ceil(len(train_index) / batch_size)
        schedule = (
            torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
            if one_cycle
            else None
        )
        fit(
            model,
            Split(images[train_idx], labels[train_idx]),
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            scheduler=schedule,
            scheduler_per_batch=True,
            train_loss_fn=loss_fn,
            transform=augment,
            seed=seed + fold,
            progress=False,
        )
        held = images[torch.as_tensor(held_index, device=images.device)]
        fold_probabilities = predict_probabilities(model, held, augment=augment, tta=tta)
        if probabilities is None:
            probabilities = fold_probabilities.new_zeros(len(images), fold_probabilities.shape[1])
        probabilities[torch.as_tensor(held_index, device=images.device)] = fold_probabilities
    assert probabilities is not None  # kfold_indices returns k >= 2 folds
    seconds = time.perf_counter() - start
    return OutOfFold(probabilities, k, seconds, torch.get_num_threads())


def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tta: int = 0,
) -> torch.Tensor:
    """Softmax probabilities (N, K) of ``model`` in eval mode, averaged over the plain ``images``
    and ``tta`` views made by ``augment`` (test-time augmentation; ``tta=0``: the plain images)."""
    total = predict(model, images).float().softmax(dim=1)
    for _ in range(tta):
        assert augment is not None
        total = total + predict(model, augment(images)).float().softmax(dim=1)
    return total / (1 + tta)


def r_precision(is_error: np.ndarray, scores: np.ndarray) -> float:
    """Precision at k = the number of true errors: the share of true errors among the ``k``
    examples with the highest ``scores`` (N,) (suspicion), where ``is_error`` (N,) marks them.

    Ties at the cut are broken by position (a stable sort). Raises ``ValueError`` with no errors
    (the metric is undefined), so ``course_utils.evidence.compare_bootstrap`` draws again.
    """
    is_error = np.asarray(is_error, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if is_error.shape != scores.shape or is_error.ndim != 1:
        raise ValueError(
            f"is_error and scores must both have shape (N,), got {is_error.shape} and {scores.shape}"
        )
    k = int(is_error.sum())
    if k == 0:
        raise ValueError("precision at the number of errors is undefined without errors")
    top = np.argsort(-scores, kind="stable")[:k]
    return float(is_error[top].mean())


def suspicion(probabilities: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``1 - p(given label)`` per example, a NumPy array (N,): larger is more suspicious (the
    same order as the per-example cross-entropy ``-log p(given label)``)."""
    p_given = probabilities.float().gather(1, labels[:, None].long()).squeeze(1)
    return (1.0 - p_given).detach().cpu().numpy()
