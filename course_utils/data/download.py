"""Full datasets through torchvision, cached on disk; a clear error when they cannot be had.

``load_torchvision(name, root)`` returns ``((train_x, train_y), (test_x, test_y), classes, source)`` as
uint8 NumPy arrays, (N, H, W) for grey sets and (N, H, W, 3) turned to (N, 3, H, W) for CIFAR-10.
It downloads on first use. Offline (or with a broken cache) it raises ``DatasetUnavailable`` naming the
embedded default; the course never falls back silently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TORCHVISION_SETS = ("mnist", "fashion_mnist", "cifar10")


class DatasetUnavailable(RuntimeError):
    """A full dataset could not be found in the cache nor downloaded."""


def _dataset_class(name: str):  # noqa: ANN202 - a torchvision dataset class
    from torchvision import datasets

    return {
        "mnist": datasets.MNIST,
        "fashion_mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
    }[name]


def _arrays(dataset) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    images = np.asarray(dataset.data)
    if images.ndim == 4:  # CIFAR-10 stores (N, H, W, 3)
        images = images.transpose(0, 3, 1, 2)
    return images, np.asarray(dataset.targets, dtype=np.int64)


def load_torchvision(name: str, root: Path, download: bool = True):  # noqa: ANN201
    """Load ``name`` from ``root`` (downloading into it when ``download``); see the module docstring."""
    if name not in TORCHVISION_SETS:
        raise ValueError(f"expected one of {TORCHVISION_SETS}, got {name!r}")
    cls = _dataset_class(name)
    try:
        train = cls(root=str(root), train=True, download=download)
        test = cls(root=str(root), train=False, download=download)
    except Exception as error:  # URLError, RuntimeError("Dataset not found"), checksum errors...
        raise DatasetUnavailable(
            f"could not load {name!r} from {root} or download it ({type(error).__name__}: {error}). "
            f"The full datasets need internet once; offline, use the embedded default "
            f"'mnist_5k' (unset COURSE_DATASET or set COURSE_DATASET=mnist_5k), or copy a "
            f"torchvision {cls.__name__} folder into {root} (COURSE_DATA_DIR)."
        ) from error
    classes = [str(c) for c in train.classes]
    source = f"torchvision.datasets.{cls.__name__} (cached in {root})"
    return _arrays(train), _arrays(test), classes, source
