"""Tasks derived from the course's dataset, so learners stay "one with" one set of images.

- ``one_vs_rest``: imbalanced binary task, one class against the others (1:9 for ten classes, rarer on
  request by thinning the positives). Labels float 0/1, for sigmoid outputs and focal loss.
- ``corrupted_copy``: the training split with planted problems and their ``AnswerKey``: exact
  duplicates, near-duplicates (brightness change + pixel noise), flipped labels and test images leaked
  into training. Stage 01's exercises are graded against the key.
- ``ink_regression``: a regression target whose mean is far from zero (total ink of a digit).
- ``adding_problem``: Hochreiter & Schmidhuber's long-memory sequence task for recurrent nets.
- ``rows_as_sequence``: images read row by row as time steps, (N, H, W*C).

All of them are deterministic functions of their ``seed`` and keep the input's device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from course_utils.data.registry import CourseData, Split


def one_vs_rest(
    split: Split, positive: int = 0, positive_fraction: float | None = None, seed: int = 0
) -> Split:
    """Binary labels ``1.0`` for class ``positive`` and ``0.0`` for the rest.

    ``positive_fraction``: if given (e.g. 0.02), positives are thinned at random (with ``seed``) until
    they make up that fraction of the result; all negatives are kept. Returns a new ``Split`` whose
    labels are float32 (N,).
    """
    is_positive = split.labels == positive
    keep = torch.ones_like(is_positive)
    if positive_fraction is not None:
        if not 0.0 < positive_fraction < 1.0:
            raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
        n_neg = int((~is_positive).sum())
        n_pos_wanted = max(1, round(positive_fraction * n_neg / (1.0 - positive_fraction)))
        pos_index = torch.nonzero(is_positive).flatten().cpu().numpy()
        if n_pos_wanted > len(pos_index):
            raise ValueError(
                f"only {len(pos_index)} examples of class {positive}; cannot reach a positive "
                f"fraction of {positive_fraction}"
            )
        rng = np.random.default_rng(seed)
        dropped = rng.choice(pos_index, size=len(pos_index) - n_pos_wanted, replace=False)
        keep[torch.as_tensor(dropped, device=keep.device)] = False
    return Split(split.images[keep], is_positive[keep].float())


@dataclass
class AnswerKey:
    """What ``corrupted_copy`` planted, in the corrupted set's indexing.

    exact_pairs / near_pairs: (original_index, copy_index) pairs, original < copy.
    flipped: indices whose label was changed; ``clean_labels`` holds the labels before flipping.
    leaked: (train_index, test_index) pairs, a test image copied into the training set.
    """

    exact_pairs: list[tuple[int, int]] = field(default_factory=list)
    near_pairs: list[tuple[int, int]] = field(default_factory=list)
    flipped: list[int] = field(default_factory=list)
    clean_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    leaked: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class CorruptedSet:
    """A corrupted training set (``images``, ``labels``) and the ``key`` to its problems."""

    images: torch.Tensor
    labels: torch.Tensor
    key: AnswerKey

    def __len__(self) -> int:
        return len(self.labels)


def corrupted_copy(
    data: CourseData,
    seed: int = 0,
    n_exact: int = 30,
    n_near: int = 30,
    flip_fraction: float = 0.03,
    n_leaked: int = 20,
    noise_std: float = 0.05,
) -> CorruptedSet:
    """The training split with planted problems, shuffled, plus its ``AnswerKey``.

    - ``n_exact`` exact duplicates (same pixels, same label) of distinct training images;
    - ``n_near`` near-duplicates: pixels times a brightness factor in [0.85, 1.15] plus Gaussian noise
      of std ``noise_std``, clipped to [0, 1];
    - ``flip_fraction`` of all examples get a different, random label (duplicates are not flipped, so
      each planted problem has one answer);
    - ``n_leaked`` test images copied into the training set with their labels.
    Everything is then shuffled with ``seed`` and the key is expressed in the shuffled order.
    """
    rng = np.random.default_rng(seed)
    images = data.train.images.cpu()
    labels = data.train.labels.cpu().numpy().copy()
    n = len(labels)
    sources = rng.choice(n, size=n_exact + n_near, replace=False)
    exact_src, near_src = sources[:n_exact], sources[n_exact:]

    gen = torch.Generator().manual_seed(seed)
    near = images[near_src] * torch.empty(n_near, 1, 1, 1).uniform_(0.85, 1.15, generator=gen)
    near = (near + noise_std * torch.randn(near.shape, generator=gen)).clamp_(0.0, 1.0)
    leaked_src = rng.choice(len(data.test), size=n_leaked, replace=False)
    test_images, test_labels = data.test.images.cpu(), data.test.labels.cpu().numpy()

    all_images = torch.cat([images, images[exact_src], near, test_images[leaked_src]])
    all_labels = np.concatenate(
        [labels, labels[exact_src], labels[near_src], test_labels[leaked_src]]
    )
    origin = np.concatenate(
        [np.arange(n), exact_src, near_src, np.full(n_leaked, -1)]
    )  # row of the original training image each row copies, -1 for leaked test images
    total = len(all_labels)

    clean = all_labels.copy()
    involved = set(sources.tolist()) | set(range(n, total))
    candidates = np.array([i for i in range(n) if i not in involved])
    n_flip = round(flip_fraction * total)
    flipped_rows = rng.choice(candidates, size=n_flip, replace=False)
    num_classes = data.num_classes
    shift = rng.integers(1, num_classes, size=n_flip)
    all_labels[flipped_rows] = (all_labels[flipped_rows] + shift) % num_classes

    order = rng.permutation(total)
    new_index = np.empty(total, dtype=np.int64)
    new_index[order] = np.arange(total)

    def pair(original_row: int, copy_row: int) -> tuple[int, int]:
        a, b = int(new_index[original_row]), int(new_index[copy_row])
        return (min(a, b), max(a, b))

    key = AnswerKey(
        exact_pairs=sorted(pair(origin[r], r) for r in range(n, n + n_exact)),
        near_pairs=sorted(pair(origin[r], r) for r in range(n + n_exact, n + n_exact + n_near)),
        flipped=sorted(int(new_index[r]) for r in flipped_rows),
        clean_labels=clean[order],
        leaked=sorted(
            (int(new_index[n + n_exact + n_near + k]), int(leaked_src[k])) for k in range(n_leaked)
        ),
    )
    device = data.train.images.device
    return CorruptedSet(
        all_images[torch.as_tensor(order)].to(device),
        torch.as_tensor(all_labels[order], device=device),
        key,
    )


def ink_regression(split: Split) -> torch.Tensor:
    """Total ink of each image, ``images.sum((1, 2, 3))``: a regression target with mean far from 0.

    For MNIST in [0, 1] the mean is about 100 and the std about 30 (shape (N,), float32).
    """
    return split.images.sum(dim=(1, 2, 3))


def adding_problem(
    n: int, length: int = 50, seed: int = 0, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: x (n, length, 2), y (n,).

    Channel 0 holds values in U(0, 1); channel 1 marks exactly two positions, one in the first half and
    one in the second; the target is the sum of the two marked values. Predicting 1.0 always gives an MSE
    of about 0.167: a net must carry a value over up to ``length`` steps to beat it.
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=gen)
    first = torch.randint(0, length // 2, (n,), generator=gen)
    second = torch.randint(length // 2, length, (n,), generator=gen)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    y = values[rows, first] + values[rows, second]
    return x.to(device), y.to(device)


def rows_as_sequence(images: torch.Tensor) -> torch.Tensor:
    """Read each image row by row: (N, C, H, W) -> (N, H, W*C), one row per time step."""
    n, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(n, h, w * c)
