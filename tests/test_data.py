from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.data import (
    DatasetUnavailable,
    adding_problem,
    corrupted_copy,
    dataset_name,
    ink_regression,
    load_data,
    one_vs_rest,
    rows_as_sequence,
)
from course_utils.data.embedded import mnist_5k

EMBEDDED_SHA256 = "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f"


@pytest.fixture(scope="module")
def data():
    return load_data("mnist_5k")


def test_embedded_mnist_is_the_documented_subset() -> None:
    images, labels, scale, _ = mnist_5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and scale == 255.0
    assert np.bincount(labels).tolist() == [500] * 10
    assert hashlib.sha256(images.tobytes()).hexdigest() == EMBEDDED_SHA256


def test_splits_have_documented_sizes_and_are_stratified(data) -> None:
    assert (len(data.train), len(data.val), len(data.test)) == (3500, 500, 1000)
    for split, per_class in ((data.train, 350), (data.val, 50), (data.test, 100)):
        assert torch.bincount(split.labels).tolist() == [per_class] * 10
    assert data.train.images.shape[1:] == (1, 28, 28)
    assert float(data.train.images.min()) >= 0.0 and float(data.train.images.max()) <= 1.0


def test_splits_are_fixed_and_disjoint(data) -> None:
    again = load_data("mnist_5k")
    assert torch.equal(again.test.images, data.test.images)
    rows = {
        split: {bytes(x.numpy()) for x in getattr(data, split).images}
        for split in ("train", "val", "test")
    }
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]


def test_dataset_setting_switches_the_course(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DATASET", "digits")
    assert dataset_name() == "digits"
    digits = load_data()
    assert digits.image_shape == (1, 8, 8) and len(digits.test) == 360
    monkeypatch.setenv("COURSE_DATASET", "imagenet")
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_data()


def test_full_dataset_offline_names_the_embedded_default(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match="mnist_5k"):
        load_data("fashion_mnist", root=tmp_path, allow_download=False)


def _write_idx(path: Path, array: np.ndarray) -> None:
    code = 0x08
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_full_dataset_loads_from_a_prepared_cache(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    n_train, n_test = 6000, 100
    names = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train),
        "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test),
    }
    for images_name, labels_name, n in names.values():
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        for name, array in ((images_name, images), (labels_name, labels)):
            _write_idx(raw / f"{name}.gz", array)
            with gzip.open(raw / f"{name}.gz") as src:
                (raw / name).write_bytes(src.read())
    data = load_data("fashion_mnist", root=tmp_path, allow_download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (1000, 5000, 100)
    assert data.classes[0] == "T-shirt/top" and data.image_shape == (1, 28, 28)


def test_one_vs_rest_reaches_the_requested_imbalance(data) -> None:
    binary = one_vs_rest(data.train, positive=3)
    assert binary.labels.dtype == torch.float32 and float(binary.labels.mean()) == pytest.approx(
        0.1
    )
    rare = one_vs_rest(data.train, positive=3, positive_fraction=0.02)
    assert float(rare.labels.mean()) == pytest.approx(0.02, abs=0.001)
    with pytest.raises(ValueError, match="positive_fraction"):
        one_vs_rest(data.train, positive_fraction=1.5)


def test_corrupted_copy_key_matches_what_was_planted(data) -> None:
    bad = corrupted_copy(data, seed=1)
    key = bad.key
    assert len(bad) == 3500 + 30 + 30 + 20
    for i, j in key.exact_pairs:
        assert i < j and torch.equal(bad.images[i], bad.images[j])
    for i, j in key.near_pairs:
        diff = (bad.images[i] - bad.images[j]).abs().mean()
        assert 0 < float(diff) < 0.1
    for i, t in key.leaked:
        assert torch.equal(bad.images[i], data.test.images[t])
    flipped = np.flatnonzero(bad.labels.numpy() != key.clean_labels)
    assert flipped.tolist() == key.flipped and len(flipped) == round(0.03 * len(bad))
    assert corrupted_copy(data, seed=1).key.flipped == key.flipped


def test_ink_regression_mean_is_far_from_zero(data) -> None:
    target = ink_regression(data.train)
    assert float(target.mean()) > 3 * float(target.std())


def test_adding_problem_targets_are_sums_of_marked_values() -> None:
    x, y = adding_problem(64, length=20, seed=0)
    assert x.shape == (64, 20, 2) and torch.all(x[..., 1].sum(1) == 2)
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(1), y)


def test_rows_as_sequence_reads_rows_in_order(data) -> None:
    seq = rows_as_sequence(data.test.images[:2])
    assert seq.shape == (2, 28, 28) and torch.equal(seq[1, 5], data.test.images[1, 0, 5])


def test_data_moves_to_the_meta_device(data) -> None:
    moved = data.to("meta")
    assert moved.train.images.device.type == "meta"
