"""A detection-like rare-class task with many easy negatives, and where focal loss puts the loss.

RetinaNet (Lin et al. 2017, https://arxiv.org/abs/1708.02002) scores ~100,000 anchors per image; a
handful cover an object, the rest are background, most of it easy. Summed over so many anchors, the
small cross-entropy of each easy negative still dominates the loss. Focal loss multiplies each term by
(1 - p_t)^gamma, which is about 0 for a well-classified anchor (p_t near 1).

``dense_one_vs_rest`` builds the image analogue: every image gives one *centred* crop (the anchor on
the object: positive if its class is ``positive``, a hard negative otherwise) and ``crops_per_image``
*off-centre* crops, shifted by at least ``min_shift`` of the image size (anchors that miss the object:
mostly empty or a sliver of stroke, easy negatives)::

    images (N, C, H, W) in [0, 1]  ->  crops (N * (1 + k), C, H, W), labels float (N * (1 + k),)
    positives: about N / num_classes, i.e. 1 in 10 * (1 + k) crops

``easy_negative_share`` is the mechanism: the share of a loss (BCE for gamma = 0, focal loss for
gamma > 0) that comes from negatives the model already classifies well (p_t > ``easy``).
``cumulative_loss_share`` is Lin et al.'s Figure 4: negatives sorted from easiest to hardest, the
cumulative share of their loss.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from course_utils.data.registry import Split
from course_utils.losses import sigmoid_focal_loss


def shifted_crops(images: torch.Tensor, shifts: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Crop each image at an offset: ``out[i]`` is ``images[i]`` moved by ``shifts[i] = (dy, dx)`` pixels.

    images (N, C, H, W); shifts int (N, 2) with |dy| <= H and |dx| <= W. Pixels that come from outside
    the image are ``fill``. ``out[i, :, r, c] = images[i, :, r - dy, c - dx]``.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (w, w, h, h), value=fill)
    shifts = shifts.to(images.device)
    rows = (h - shifts[:, 0])[:, None] + torch.arange(h, device=images.device)[None]  # (N, H)
    cols = (w - shifts[:, 1])[:, None] + torch.arange(w, device=images.device)[None]  # (N, W)
    return padded[
        torch.arange(n, device=images.device)[:, None, None, None],
        torch.arange(c, device=images.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def off_centre_shifts(
    n: int, height: int, width: int, min_shift: float, generator: torch.Generator
) -> torch.Tensor:
    """(n, 2) integer shifts (dy, dx), uniform over the offsets where |dy|/H or |dx|/W >= min_shift."""
    out = torch.empty(n, 2, dtype=torch.long)
    todo = torch.arange(n)
    while len(todo):
        dy = torch.randint(-height, height + 1, (len(todo),), generator=generator)
        dx = torch.randint(-width, width + 1, (len(todo),), generator=generator)
        far = (dy.abs() >= min_shift * height) | (dx.abs() >= min_shift * width)
        out[todo[far]] = torch.stack([dy[far], dx[far]], dim=1)
        todo = todo[~far]
    return out


def dense_one_vs_rest(
    split: Split,
    positive: int,
    *,
    crops_per_image: int = 7,
    min_shift: float = 0.5,
    max_images: int | None = None,
    seed: int = 0,
) -> Split:
    """Centred crops (label 1 for class ``positive``, else 0) and off-centre crops (label 0).

    ``split.images`` in [0, 1] (background 0; normalise after). ``max_images``: a seeded random subset
    of the split first (None: all). Returns a ``Split`` with float labels; the centred crops come first
    (``len(result) = n * (1 + crops_per_image)``).
    """
    if crops_per_image < 0 or not 0 < min_shift <= 1:
        raise ValueError("crops_per_image must be >= 0 and min_shift in (0, 1]")
    generator = torch.Generator().manual_seed(seed)
    if max_images is not None and max_images < len(split):
        pick = torch.randperm(len(split), generator=generator)[:max_images]
        split = split.subset(pick.to(split.labels.device))
    images = split.images
    n, _, h, w = images.shape
    crops = [images]
    for _ in range(crops_per_image):
        crops.append(shifted_crops(images, off_centre_shifts(n, h, w, min_shift, generator)))
    labels = torch.zeros(n * (1 + crops_per_image), device=images.device)
    labels[:n] = (split.labels == positive).float()
    return Split(torch.cat(crops), labels)


def per_positive(
    loss: Callable[..., torch.Tensor],
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """RetinaNet's normalisation of ``loss``: summed over all anchors, divided by the positives.

    ``loss(logits, targets, reduction="sum")`` must exist (``F.binary_cross_entropy_with_logits``,
    ``sigmoid_focal_loss``). Returns ``f(logits, targets) = loss(..., "sum") / max(1, targets.sum())``:
    unlike the mean over anchors, the easy negatives' share of the step does not shrink as they multiply.
    """

    def normalised(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss(logits, targets, reduction="sum") / targets.sum().clamp(min=1)

    return normalised


def per_example_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, alpha: float = 0.25
):
    """BCE per example for ``gamma == 0``, else the focal loss with ``alpha`` (shape of ``logits``)."""
    if gamma == 0:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")


def easy_negative_share(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, easy: float = 0.9
) -> float:
    """Share of the summed loss coming from negatives with p_t = 1 - sigmoid(logit) > ``easy``."""
    logits, targets = logits.detach().float(), targets.float()
    loss = per_example_loss(logits, targets, gamma)
    well_classified = (targets == 0) & (torch.sigmoid(logits) < 1 - easy)
    total = float(loss.sum())
    return float(loss[well_classified].sum()) / total if total > 0 else 0.0


def cumulative_loss_share(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of negatives, cumulative share of their loss), negatives sorted easiest first."""
    negatives = targets == 0
    loss = per_example_loss(logits.detach().float()[negatives], targets.float()[negatives], gamma)
    ordered = torch.sort(loss).values.double().cpu().numpy()
    share = np.cumsum(ordered) / max(ordered.sum(), np.finfo(float).tiny)
    return np.arange(1, len(ordered) + 1) / len(ordered), share


def plot_cumulative_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gammas: tuple[float, ...] = (0.0, 2.0),
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Lin et al.'s Figure 4 for one model: the cumulative loss share of its negatives, per gamma."""
    ax = ax or plt.gca()
    for gamma in gammas:
        fraction, share = cumulative_loss_share(logits, targets, gamma)
        name = "BCE (gamma = 0)" if gamma == 0 else f"focal, gamma = {gamma:g}"
        ax.plot(fraction, share, label=name)
    ax.set(
        xlabel="fraction of negatives, easiest first",
        ylabel="cumulative share of their loss",
        title="where the negatives' loss comes from",
    )
    ax.legend(fontsize=8)
    return ax
