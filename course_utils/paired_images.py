"""Two trained models compared on the same test images: the pairs are the images.

Scoring both models on one split gives, per image i, an outcome for each (right or wrong, or the
image's cross-entropy); the paired differences cancel what the images share (an easy 1, an
ambiguous 4/9), so the interval is narrower than that of two separate accuracies::

    d_i = outcome_treatment(i) - outcome_control(i)      i = 1..N test images
    effect, 95% interval = evidence.compare_paired(treatment, control)   (McNemar's Wald
                                                        interval when the outcomes are 0/1)

The interval covers which images are in the split, *not* the seed-to-seed spread of training: a
verdict from one seed per arm is a statement about these two trained models.
``treatment_split`` scores the treatment on other inputs of the same images (e.g. downsampled ones).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import nn

from course_utils.evidence import Comparison, compare_paired
from course_utils.train import SplitLike, predict


def per_image_correct(model: nn.Module, split: SplitLike) -> np.ndarray:
    """1.0 where ``model`` (eval mode) predicts the label of the image, else 0.0: shape (N,)."""
    hits = predict(model, split.images).argmax(dim=1) == split.labels
    return hits.double().cpu().numpy()


def per_image_loss(model: nn.Module, split: SplitLike) -> np.ndarray:
    """Cross-entropy of each image (nats), shape (N,): its mean is the split's test loss."""
    logits = predict(model, split.images).double()
    return F.cross_entropy(logits, split.labels, reduction="none").cpu().numpy()


def compare_models(
    treatment: nn.Module,
    control: nn.Module,
    split: SplitLike,
    *,
    min_effect: float,
    better: str = "higher",
    metric: str = "accuracy",
    treatment_split: SplitLike | None = None,
) -> Comparison:
    """Treatment minus control on the images of ``split``, paired by image.

    ``metric``: ``"accuracy"`` (0/1 per image, ``min_effect`` in fractions: 0.01 is one point) or
    ``"loss"`` (per-image cross-entropy in nats; pass ``better="lower"``).
    """
    if metric not in ("accuracy", "loss"):
        raise ValueError(f'metric must be "accuracy" or "loss", got {metric!r}')
    outcome = per_image_correct if metric == "accuracy" else per_image_loss
    return compare_paired(
        outcome(treatment, treatment_split or split),
        outcome(control, split),
        min_effect=min_effect,
        better=better,
    )
