"""Search, filter and sort a dataset: duplicates, leaks, label errors, class balance and outliers.

Stage 1 of Karpathy's recipe ("become one with the data") asks for code that searches, filters and
sorts the data. These are the course's reference versions; stage 01's exercises ask learners to write
the first three themselves.

Shared interface: ``images`` are float tensors (N, C, H, W) (any N-D layout with N first works),
pixels in [0, 1]; ``labels`` are int64 (N,); ``logits`` are (N, K). Tensor-valued functions keep the
input's device and run on the ``meta`` device. Functions that return *pairs* or *sets* of indices
(``find_exact_duplicates``, ``find_near_duplicates``, ``find_leaks``) return sorted Python lists of
``(i, j)`` tuples with ``i < j`` (``(train_i, test_j)`` for leaks), so they read the values once at
the end (one host synchronisation, outside any training loop).

The near-duplicate distance (``near_duplicate_distance``), chosen to ignore what a re-scan or a
re-encoding changes (brightness, faint noise) and keep what it does not (the shape of the strokes):

1. ``x <- max(x - noise_floor, 0)``: drop faint pixels (default ``noise_floor=0.15``), where sensor
   noise lives; on MNIST, Gaussian noise of std 0.05 rarely reaches 0.15.
2. centre and L2-normalise each image: ``z = (x - mean(x)) / ||x - mean(x)||``; a brightness factor
   ``a * x`` (and an offset) cancels.
3. ``d(x, y) = 1 - <z_x, z_y>``, the cosine distance of the centred images, i.e. 1 - Pearson
   correlation of the thresholded pixels, in [0, 2].

Measured on ``corrupted_copy(load_data("mnist_5k"), seed)`` (3,580 images; 30 near-duplicates made
with brightness in [0.85, 1.15] and noise std 0.05), seeds 0-4: planted near-duplicates lie at
d <= 0.0065 and the closest pair of *different* images (two thin 1s) at d = 0.024 (0.022 among all
5,000 mnist_5k images). With the default ``threshold=0.015``, ``find_near_duplicates`` has precision
1.0 and recall 1.0 on every seed, and ``find_leaks`` (against the 1,000 test images) finds all 20
planted leaks with precision 1.0. Without step 1 a noisy copy of a thin 1 can sit at 0.035 while two
different 1s sit at 0.019, so no threshold separates them in the worst case (on seed 0 the gap is
0.013 to 0.019); raw L2 is worse: on seed 0 the brightness-changed copies reach L2 = 2.1 while two
different thin 1s are at L2 = 1.3.

Label errors: the confident-learning idea (Northcutt, Jiang & Chuang, JAIR 2021, arXiv:1911.00068;
Northcutt, Athalye & Mueller, arXiv:2103.14749) is to rank examples by how little probability an
*out-of-fold* model gives to their label, ``1 - p(given label | x)``; out-of-fold so the model never
saw (and memorised) the label it is judging. ``cross_validated_logits`` produces those predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data.registry import Split
from course_utils.train import fit, predict
from course_utils.tuning import kfold_indices

NOISE_FLOOR = 0.15
NEAR_THRESHOLD = 0.015

Pair = tuple[int, int]


def _check_images(images: object, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim < 2:
        raise ValueError(
            f"{name} must have shape (N, ...) with N images, got {tuple(images.shape)}"
        )
    return images


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 2.0:
        raise ValueError(f"threshold must be a cosine distance in [0, 2], got {threshold}")


def _check_block_size(block_size: int) -> None:
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")


def _sorted_pairs(rows: torch.Tensor, cols: torch.Tensor) -> list[Pair]:
    pairs = torch.stack([rows, cols], dim=1).cpu().tolist()
    return sorted((int(i), int(j)) for i, j in pairs)


def group_ids(images: torch.Tensor) -> torch.Tensor:
    """An id per image such that two images share an id exactly when all their pixels are equal.

    Computed with ``torch.unique(..., dim=0, return_inverse=True)`` on the flattened images, so it is a
    sort (O(N log N) comparisons of rows), not an O(N^2) loop. Returns int64 (N,) on the input device.
    """
    images = _check_images(images)
    if len(images) == 0:
        return images.new_zeros(0, dtype=torch.long)
    _, inverse = torch.unique(images.reshape(len(images), -1), dim=0, return_inverse=True)
    return inverse


def find_exact_duplicates(images: torch.Tensor) -> list[Pair]:
    """All pairs ``(i, j)``, ``i < j``, of images whose pixels are all equal, sorted.

    A group of ``k`` identical images gives all its ``k(k-1)/2`` pairs. Images are grouped by
    ``group_ids`` (a sort of the flattened rows), then pairs are formed within each group.
    """
    ids = group_ids(images)
    n = len(ids)
    if n < 2:
        return []
    order = torch.argsort(ids, stable=True)
    sorted_ids = ids[order]
    counts = torch.unique_consecutive(sorted_ids, return_counts=True)[1].cpu().tolist()
    order = order.cpu().tolist()
    pairs: list[Pair] = []
    start = 0
    for count in counts:
        members = sorted(order[start : start + count])
        pairs.extend((members[a], members[b]) for a in range(count) for b in range(a + 1, count))
        start += count
    return sorted(pairs)


def near_duplicate_features(images: torch.Tensor, noise_floor: float = NOISE_FLOOR) -> torch.Tensor:
    """Unit vectors (N, D) whose dot products give the near-duplicate distance (module docstring).

    ``z = c / ||c||`` with ``c = t - mean(t)`` and ``t = max(x - noise_floor, 0)`` per flattened image.
    A constant image (after the floor) maps to the zero vector: distance 1 to everything.
    Computed in float32 at least (float64 stays float64).
    """
    images = _check_images(images)
    if noise_floor < 0:
        raise ValueError(f"noise_floor must be >= 0, got {noise_floor}")
    x = images.reshape(len(images), -1)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    x = (x - noise_floor).clamp(min=0.0)
    centred = x - x.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp(min=1e-12)


def near_duplicate_distance(
    a: torch.Tensor, b: torch.Tensor | None = None, noise_floor: float = NOISE_FLOOR
) -> torch.Tensor:
    """Matrix (Na, Nb) of ``d(a_i, b_j) = 1 - <z(a_i), z(b_j)>`` (``b`` defaults to ``a``).

    ``z`` is ``near_duplicate_features``: thresholded, centred, unit-norm pixels. Values in [0, 2];
    identical images give 0 (up to rounding), a brightness-scaled noisy copy about 0.001-0.01.
    Memory is Na x Nb: use ``find_near_duplicates`` / ``nearest_neighbours`` for large sets.
    """
    za = near_duplicate_features(a, noise_floor)
    zb = za if b is None else near_duplicate_features(b, noise_floor).to(za.dtype)
    return (1.0 - za @ zb.T).clamp(min=0.0)


def find_near_duplicates(
    images: torch.Tensor,
    threshold: float = NEAR_THRESHOLD,
    exclude_exact: bool = True,
    noise_floor: float = NOISE_FLOOR,
    block_size: int = 2048,
) -> list[Pair]:
    """Pairs ``(i, j)``, ``i < j``, with near-duplicate distance below ``threshold``, sorted.

    Distance: ``near_duplicate_distance`` (module docstring), computed block by block (``block_size``
    rows at a time, one matrix product each) so memory stays at ``block_size x N``. With
    ``exclude_exact`` (default) pairs of pixel-identical images are left out: those are
    ``find_exact_duplicates``' job. Default threshold 0.015: precision = recall = 1.0 on the planted
    near-duplicates of ``corrupted_copy`` of mnist_5k (seeds 0-4; see the module docstring).
    """
    _check_threshold(threshold)
    _check_block_size(block_size)
    z = near_duplicate_features(images, noise_floor)
    ids = group_ids(images) if exclude_exact else None
    n = len(z)
    found_rows, found_cols = [], []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        distance = 1.0 - z[start:stop] @ z.T
        rows = torch.arange(start, stop, device=z.device)[:, None]
        cols = torch.arange(n, device=z.device)[None, :]
        hit = (distance < threshold) & (cols > rows)
        if ids is not None:
            hit &= ids[start:stop, None] != ids[None, :]
        r, c = torch.nonzero(hit, as_tuple=True)
        found_rows.append(r + start)
        found_cols.append(c)
    if not found_rows:
        return []
    return _sorted_pairs(torch.cat(found_rows), torch.cat(found_cols))


def nearest_neighbours(
    queries: torch.Tensor,
    reference: torch.Tensor,
    k: int = 1,
    noise_floor: float = NOISE_FLOOR,
    block_size: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest reference images of every query under the near-duplicate distance.

    Returns ``(distances, indices)``, both (Nq, k), nearest first; indices point into ``reference``.
    Use it for train/test leakage: a test image whose nearest training image is at distance ~0 was
    (almost) seen in training.
    """
    _check_block_size(block_size)
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be in [1, len(reference)={len(reference)}], got {k}")
    zq = near_duplicate_features(queries, noise_floor)
    zr = near_duplicate_features(reference, noise_floor).to(zq.dtype)
    distances, indices = [], []
    for start in range(0, len(zq), block_size):
        d = (1.0 - zq[start : start + block_size] @ zr.T).clamp(min=0.0)
        values, index = torch.topk(d, k, dim=1, largest=False)
        distances.append(values)
        indices.append(index)
    if not distances:
        return zq.new_zeros(0, k), torch.zeros(0, k, dtype=torch.long, device=zq.device)
    return torch.cat(distances), torch.cat(indices)


def find_leaks(
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    threshold: float = NEAR_THRESHOLD,
    noise_floor: float = NOISE_FLOOR,
    block_size: int = 2048,
) -> list[Pair]:
    """All pairs ``(train_i, test_j)`` at near-duplicate distance below ``threshold``, sorted.

    Exact copies (distance 0) and near copies of test images in the training set both count: either
    lets a model score on a test image it has (almost) seen.
    """
    _check_threshold(threshold)
    _check_block_size(block_size)
    z_train = near_duplicate_features(train_images, noise_floor)
    z_test = near_duplicate_features(test_images, noise_floor).to(z_train.dtype)
    rows, cols = [], []
    for start in range(0, len(z_train), block_size):
        d = 1.0 - z_train[start : start + block_size] @ z_test.T
        r, c = torch.nonzero(d < threshold, as_tuple=True)
        rows.append(r + start)
        cols.append(c)
    if not rows:
        return []
    return _sorted_pairs(torch.cat(rows), torch.cat(cols))


def _check_logits_labels(logits: object, labels: object) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a tensor of shape (N, K), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != logits.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape ({logits.shape[0]},), got {shape}")
    if labels.dtype != torch.long:
        raise ValueError(f"labels must be int64 class indices, got dtype {labels.dtype}")


def label_error_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How suspicious each label is: ``1 - softmax(logits)[i, labels[i]]``, shape (N,), in [0, 1].

    Give it *out-of-fold* logits (``cross_validated_logits``). The score is one minus the
    "self-confidence" of confident learning; it ranks examples exactly as the per-example
    cross-entropy ``-log p(label)`` does. Softmax is taken in float32 at least.
    """
    _check_logits_labels(logits, labels)
    z = logits if logits.dtype == torch.float64 else logits.float()
    p_given = F.softmax(z, dim=1).gather(1, labels[:, None]).squeeze(1)
    return 1.0 - p_given


def rank_label_errors(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Indices (N,) int64, most suspicious label first (``label_error_scores`` descending, stable)."""
    return torch.argsort(label_error_scores(logits, labels), descending=True, stable=True)


def quick_classifier(image_shape: Sequence[int], num_classes: int, hidden: int = 128) -> nn.Module:
    """A small MLP, ``Flatten -> Linear(D, hidden) -> ReLU -> Linear(hidden, num_classes)``.

    Quick enough to train k times for out-of-fold predictions and good enough to make confident
    ones. Measured with ``hidden=128``, 5 folds, 10 epochs (Adam 1e-3, batch 128) on
    ``corrupted_copy`` of mnist_5k (seed 0): out-of-fold accuracy 0.91 against the clean labels,
    ``rank_label_errors`` precision@107 = 0.80 on the 107 flipped labels (random: 0.03); about 2 s
    on an idle 2-core CPU.
    """
    inputs = int(np.prod(image_shape))
    return nn.Sequential(
        nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


def quick_cnn(image_shape: Sequence[int], num_classes: int, hidden: int = 64) -> nn.Module:
    """A small batch-norm conv net for out-of-fold predictions (105,914 parameters on 28x28)::

        [Conv3x3(c -> 16) -> BatchNorm -> ReLU -> MaxPool2] -> [Conv3x3(16 -> 32) -> BatchNorm ->
        ReLU -> MaxPool2] -> Flatten -> Linear(32 (H/4) (W/4), hidden) -> ReLU -> Linear(hidden, K)

    Measured on ``corrupted_copy`` of mnist_5k (seed 0), 5 folds, 8 epochs of one-cycle Adam
    (peak 3e-3, batch 64) with per-image random rotations and shifts
    (``course_utils.out_of_fold``): ``rank_label_errors`` precision@107 = 0.935 on the 107 flipped
    labels (the quick MLP: 0.785), out-of-fold accuracy 0.975 against the clean labels, about
    50 CPU-seconds (one thread); with 6 epochs 0.925 (accuracy 0.973).
    """
    channels, height, width = (int(v) for v in image_shape)

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(channels, 16),
        *block(16, 32),
        nn.Flatten(),
        nn.Linear(32 * (height // 4) * (width // 4), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def cross_validated_logits(
    images: torch.Tensor,
    labels: torch.Tensor,
    make_model: Callable[[], nn.Module],
    k: int = 5,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    **fit_kwargs: Any,
) -> torch.Tensor:
    """Out-of-fold logits (N, K): each example's logits come from a model that never trained on it.

    The examples are split into ``k`` stratified folds (``course_utils.tuning.kfold_indices``, seed
    ``seed``). For each fold a fresh ``make_model()`` (seeded with ``seed + fold``, moved to the
    images' device) is trained with ``course_utils.train.fit`` on the other ``k - 1`` folds for
    ``epochs`` epochs (Adam, ``lr``, ``batch_size``; extra ``fit_kwargs`` are passed on) and predicts
    the held-out fold. Returns the logits in the input order on the images' device.
    """
    _check_images(images)
    if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"labels must be a tensor of shape ({len(images)},), got "
            f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    folds = kfold_indices(labels, k=k, seed=seed)
    outputs: torch.Tensor | None = None
    for fold, (train_index, held_index) in enumerate(folds):
        torch.manual_seed(seed + fold)
        model = make_model().to(images.device)
        train_idx = torch.as_tensor(train_index, device=images.device)
        held_idx = torch.as_tensor(held_index, device=images.device)
        fit_kwargs.setdefault("progress", False)
        fit(
            model,
            Split(images[train_idx], labels[train_idx]),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed + fold,
            **fit_kwargs,
        )
        held_logits = predict(model, images[held_idx])
        if outputs is None:
            outputs = held_logits.new_zeros(len(images), held_logits.shape[1])
        outputs[held_idx] = held_logits
    assert outputs is not None  # kfold_indices returns k >= 2 folds
    return outputs


def _as_set(items: Iterable[Any]) -> set[Any]:
    return {
        tuple(int(v) for v in item) if isinstance(item, (tuple, list)) else int(item)
        for item in items
    }


def precision_recall(found: Iterable[Any], truth: Iterable[Any]) -> tuple[float, float]:
    """``(precision, recall)`` of the set ``found`` against the set ``truth``.

    Items are indices or index pairs (tuples/lists are compared as tuples, so ``[1, 2] == (1, 2)``;
    give pairs in one orientation, e.g. ``i < j``). precision = |found & truth| / |found| (1.0 when
    nothing is found: no false claims); recall = |found & truth| / |truth| (1.0 when truth is empty).
    """
    found_set, truth_set = _as_set(found), _as_set(truth)
    hits = len(found_set & truth_set)
    precision = hits / len(found_set) if found_set else 1.0
    recall = hits / len(truth_set) if truth_set else 1.0
    return precision, recall


def precision_at_k(
    ranking: Sequence[int] | torch.Tensor, truth: Iterable[int], k: int | None = None
) -> float:
    """Fraction of the first ``k`` ranked indices that are in ``truth`` (``k`` default: len(truth))."""
    truth_set = _as_set(truth)
    k = len(truth_set) if k is None else k
    if k < 1:
        raise ValueError(f"k must be >= 1 (or truth non-empty when k is None), got {k}")
    top = ranking[:k].tolist() if isinstance(ranking, torch.Tensor) else list(ranking)[:k]
    return sum(int(i) in truth_set for i in top) / k


def class_balance(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Number of examples of each class, int64 (num_classes,), on the labels' device."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype != torch.long:
        raise ValueError(f"labels must be an int64 tensor of shape (N,), got {labels!r:.80}")
    return labels.new_zeros(num_classes).scatter_add_(0, labels, torch.ones_like(labels))


def total_ink(images: torch.Tensor) -> torch.Tensor:
    """Sum of all pixels of each image, (N,): a crude "how thick is the stroke" number."""
    images = _check_images(images)
    return images.reshape(len(images), -1).sum(dim=1)


def outlier_scores(
    images: torch.Tensor, labels: torch.Tensor | None = None, num_classes: int | None = None
) -> torch.Tensor:
    """How unusual each image is, (N,) float; higher is stranger.

    With ``labels``: ``d_i = ||x_i - mean of class labels[i]||`` (Euclidean, pixels flattened), as a
    z-score within its class, ``(d_i - mean_c d) / std_c d``. An image far from its class's average
    is an odd example of that class, or wrongly labelled. ``num_classes`` defaults to
    ``labels.max() + 1`` (a host read; pass it to avoid one).
    Without labels: ``|z-score of total_ink|``, the unusually thin or thick images.
    """
    images = _check_images(images)
    x = images.reshape(len(images), -1)
    x = x if x.dtype == torch.float64 else x.float()
    if labels is None:
        ink = x.sum(dim=1)
        return ((ink - ink.mean()) / ink.std().clamp(min=1e-12)).abs()
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = class_balance(labels, num_classes).to(x.dtype).clamp(min=1.0)
    means = x.new_zeros(num_classes, x.shape[1]).index_add_(0, labels, x) / counts[:, None]
    distance = (x - means[labels]).norm(dim=1)
    mean_d = distance.new_zeros(num_classes).index_add_(0, labels, distance) / counts
    sq = (distance - mean_d[labels]) ** 2
    std_d = (sq.new_zeros(num_classes).index_add_(0, labels, sq) / counts).sqrt()
    return (distance - mean_d[labels]) / std_d[labels].clamp(min=1e-12)


def sample_per_class(
    labels: torch.Tensor, num_classes: int, per_class: int, seed: int = 0
) -> torch.Tensor:
    """Indices (num_classes * per_class,): ``per_class`` random examples of each class, class by
    class (fewer for a class that has fewer), drawn with ``seed``; on the labels' device."""
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num_classes):
        members = torch.nonzero(labels.cpu() == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picked).to(labels.device)


def nearest_other_distance(
    images: torch.Tensor, rows: Sequence[int] | torch.Tensor, metric: str = "recipe"
) -> torch.Tensor:
    """For each image ``images[rows[i]]``, the distance (len(rows),) to its nearest *other* image of
    ``images``: ``metric="recipe"`` is ``near_duplicate_distance``, ``"l2"`` the Euclidean distance
    of the raw pixel vectors."""
    _check_images(images)
    rows = torch.as_tensor(rows, dtype=torch.long, device=images.device)
    if metric == "recipe":
        distance = near_duplicate_distance(images[rows], images)
    elif metric == "l2":
        distance = torch.cdist(images[rows].flatten(1).float(), images.flatten(1).float())
    else:
        raise ValueError(f'metric must be "recipe" or "l2", got {metric!r}')
    distance[torch.arange(len(rows), device=images.device), rows] = float("inf")  # not itself
    return distance.min(dim=1).values
