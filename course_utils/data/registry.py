"""The course's datasets, one setting away: ``load_data()``.

Every dataset arrives the same way, as a ``CourseData`` with fixed, documented train/validation/test splits
of float images in [0, 1] with shape (N, C, H, W) and int64 labels (N,):

============== ======================================= ============ ===== ===== ======
name           source                                  image        train val   test
============== ======================================= ============ ===== ===== ======
mnist_5k       embedded (MNIST subset, default)        1 x 28 x 28  3500  500   1000
digits         embedded (scikit-learn load_digits)     1 x 8 x 8    1257  180   360
mnist          torchvision, downloaded to the cache    1 x 28 x 28  55000 5000  10000
fashion_mnist  torchvision, downloaded to the cache    1 x 28 x 28  55000 5000  10000
cifar10        torchvision, downloaded to the cache    3 x 32 x 32  45000 5000  10000
============== ======================================= ============ ===== ===== ======

The embedded sets are split by a stratified shuffle with seed 0 (scikit-learn's ``train_test_split``)
and each split keeps that shuffled order, so a slice is a random sample; the full sets keep their
official test set and hold out a stratified, shuffled 5,000 of the training set.

Which dataset: the ``name`` argument, else the ``COURSE_DATASET`` environment variable, else ``mnist_5k``.
Where full sets are cached: the ``root`` argument, else ``COURSE_DATA_DIR``, else ``~/.cache/the-recipe``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from course_utils.data import download, embedded

DATASET_ENV = "COURSE_DATASET"
DATA_DIR_ENV = "COURSE_DATA_DIR"
DEFAULT_DATASET = "mnist_5k"
SPLIT_SEED = 0


@dataclass
class Split:
    """One split: ``images`` float32 (N, C, H, W) in [0, 1] and ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor | np.ndarray | slice) -> Split:
        """The examples at ``index`` (a slice, boolean mask or integer indices)."""
        if isinstance(index, np.ndarray):
            index = torch.as_tensor(index, device=self.labels.device)
        return Split(self.images[index], self.labels[index])


@dataclass
class CourseData:
    """A dataset with its three splits and what a learner needs to know about it."""

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, shapes (C,)."""
        return self.train.images.mean(dim=(0, 2, 3)), self.train.images.std(dim=(0, 2, 3))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` with the training split's per-channel statistics."""
        mean, std = self.channel_stats()
        mean = mean.to(images.device, images.dtype).view(1, -1, 1, 1)
        std = std.to(images.device, images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std

    def to(self, device: torch.device | str) -> CourseData:
        return CourseData(
            self.name,
            self.classes,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.source,
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"CourseData({self.name!r}: {self.num_classes} classes, {c}x{h}x{w} images, "
            f"train {len(self.train)} / val {len(self.val)} / test {len(self.test)}, "
            f"device {self.train.images.device})"
        )


def _to_split(images: np.ndarray, labels: np.ndarray, scale: float) -> Split:
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(scale)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return Split(x, torch.from_numpy(np.asarray(labels)).long())


def stratified_splits(
    labels: np.ndarray, test_size: int, val_size: int, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test) of a stratified shuffle split with the given sizes.

    The indices stay in shuffled order (the embedded file is sorted by class), so any slice of a
    split, e.g. ``train.images[:300]``, is a class-balanced-in-expectation random sample.
    """
    from sklearn.model_selection import train_test_split  # here: `course doctor` needs no sklearn

    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_size, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_size, stratify=labels[rest], random_state=seed
    )
    return train, val, test


def _load_embedded(
    loader: Callable[[], tuple[np.ndarray, np.ndarray, float, str]],
    name: str,
    test_size: int,
    val_size: int,
) -> CourseData:
    images, labels, scale, source = loader()
    train, val, test = stratified_splits(labels, test_size, val_size)
    return CourseData(
        name=name,
        classes=[str(d) for d in range(10)],
        train=_to_split(images[train], labels[train], scale),
        val=_to_split(images[val], labels[val], scale),
        test=_to_split(images[test], labels[test], scale),
        source=source,
    )


def _load_full(name: str, root: Path, allow_download: bool) -> CourseData:
    loaded = download.load_torchvision(name, root, download=allow_download)
    (train_x, train_y), (test_x, test_y), classes, source = loaded
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train_y))
    train, val = train_test_split(index, test_size=5000, stratify=train_y, random_state=SPLIT_SEED)
    return CourseData(
        name=name,
        classes=classes,
        train=_to_split(train_x[train], train_y[train], 255.0),
        val=_to_split(train_x[val], train_y[val], 255.0),
        test=_to_split(test_x, test_y, 255.0),
        source=source,
    )


EMBEDDED = {"mnist_5k": (embedded.mnist_5k, 1000, 500), "digits": (embedded.digits, 360, 180)}
DATASETS = (*EMBEDDED, *download.TORCHVISION_SETS)


def dataset_name(name: str | None = None) -> str:
    """The dataset the course uses: ``name``, else ``$COURSE_DATASET``, else ``mnist_5k``."""
    chosen = name or os.environ.get(DATASET_ENV) or DEFAULT_DATASET
    if chosen not in DATASETS:
        raise ValueError(f"unknown dataset {chosen!r}; choose one of {', '.join(DATASETS)}")
    return chosen


def data_dir(root: str | Path | None = None) -> Path:
    """Cache folder for the full datasets: ``root``, else ``$COURSE_DATA_DIR``, else ~/.cache/the-recipe."""
    chosen = root or os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "the-recipe"
    return Path(chosen).expanduser()


def load_data(
    name: str | None = None,
    device: torch.device | str | None = None,
    root: str | Path | None = None,
    allow_download: bool = True,
) -> CourseData:
    """Load a course dataset with its fixed splits, on ``device`` (default: CPU).

    ``name``: one of ``DATASETS`` (default from ``COURSE_DATASET``, else ``mnist_5k``). Full sets are
    downloaded to ``data_dir(root)`` on first use; offline, a ``DatasetUnavailable`` error says how to
    get them and names the embedded default. The course never swaps datasets silently.
    ``allow_download=False`` only reads the cache (what the tests use: they never touch the network).
    """
    chosen = dataset_name(name)
    if chosen in EMBEDDED:
        loader, test_size, val_size = EMBEDDED[chosen]
        data = _load_embedded(loader, chosen, test_size, val_size)
    else:
        data = _load_full(chosen, data_dir(root), allow_download)
    return data.to(device) if device is not None else data
