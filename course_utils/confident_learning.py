"""Confident learning's count of label issues (Northcutt, Jiang and Chuang, JAIR 2021, section 3).

From out-of-fold probabilities ``p`` (N, K) and the given labels ``y`` (N,), each class gets a
threshold, the model's average confidence in that class over the examples labelled with it::

    t_j = mean { p[i, j] : y[i] = j }

An example "confidently belongs" to the classes whose probability reaches their threshold; among
those it is counted under the most probable one, ``guess[i] = argmax_{j : p[i, j] >= t_j} p[i, j]``
(not counted if there is none). The examples counted under a class other than their given label
(the off-diagonal of the *confident joint*) are the label issues: their number is confident
learning's estimate of how many labels are wrong, with no threshold to tune. Ranking the issues by
``p[i, y[i]]`` (lowest first) is cleanlab's ``prune_by_noise_rate=False`` "self-confidence" order.
"""

from __future__ import annotations

import torch


def class_thresholds(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``t`` (K,): the mean probability of class j over the examples labelled j (NaN if none)."""
    k = probabilities.shape[1]
    onehot = torch.nn.functional.one_hot(labels.long(), k).to(probabilities.dtype)
    return (onehot * probabilities).sum(dim=0) / onehot.sum(dim=0)


def label_issues(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boolean mask (N,): the examples confident learning counts under another class than their
    label (see the module docstring). ``probabilities`` (N, K) rows sum to 1; ``labels`` (N,)."""
    if probabilities.ndim != 2 or labels.shape != probabilities.shape[:1]:
        raise ValueError(
            f"need probabilities (N, K) and labels (N,), got {tuple(probabilities.shape)} and "
            f"{tuple(labels.shape)}"
        )
    confident = probabilities >= class_thresholds(probabilities, labels)
    masked = torch.where(confident, probabilities, torch.full_like(probabilities, -1.0))
    guess = masked.argmax(dim=1)
    return confident.any(dim=1) & (guess != labels)
