"""Tests of course_utils.out_of_fold: out-of-fold probabilities, their timing, R-precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.data import corrupted_copy, load_data
from course_utils.data import explore as ex
from course_utils.evidence import HOLDS, compare_bootstrap
from course_utils.out_of_fold import (
    OutOfFold,
    out_of_fold_probabilities,
    predict_probabilities,
    r_precision,
    suspicion,
)
from course_utils.random_affine import random_affine


class _Spy(nn.Module):
    """Remembers which example ids (pixel [0, 0, 0]) it saw in training and in prediction."""

    def __init__(self, log: list[_Spy]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.trained: set[int] = set()
        self.predicted: set[int] = set()
        log.append(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = {round(float(v)) for v in x[:, 0, 0, 0].tolist()}
        (self.trained if self.training else self.predicted).update(ids)
        return self.weight.expand(len(x), 3) + x[:, 0, 0, :1]


def _ids(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.zeros(n, 1, 2, 2)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return images, torch.arange(n) % 3


@pytest.mark.parametrize("one_cycle", [True, False])
def test_probabilities_are_out_of_fold_and_sum_to_one(one_cycle):
    images, labels = _ids(30)
    models: list[_Spy] = []
    oof = out_of_fold_probabilities(
        images, labels, lambda: _Spy(models), k=5, epochs=2, batch_size=8, one_cycle=one_cycle
    )
    assert isinstance(oof, OutOfFold) and oof.k == 5 and oof.seconds > 0 and oof.threads >= 1
    assert oof.probabilities.shape == (30, 3)
    torch.testing.assert_close(oof.probabilities.sum(dim=1), torch.ones(30))
    assert len(models) == 5
    assert set().union(*(m.predicted for m in models)) == set(range(30))
    for model in models:
        assert model.predicted and not model.trained & model.predicted
    assert "5-fold out-of-fold probabilities of 30 examples in" in str(oof)


def test_training_batches_are_augmented_and_tta_averages_views():
    images, labels = _ids(12)
    calls: list[int] = []

    def augment(x):
        calls.append(len(x))
        return x

    out_of_fold_probabilities(
        images, labels, lambda: _Spy([]), k=2, epochs=1, batch_size=6, augment=augment, tta=3
    )
    # 2 folds x 1 batch of 6 training images, then 3 views of each 6-image held-out fold
    assert calls == [6, 6, 6, 6, 6, 6, 6, 6]


def test_predict_probabilities_with_tta_is_the_mean_of_the_views():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    images = torch.rand(5, 1, 2, 2)
    views = iter([images * 0.5, images * 2.0])
    got = predict_probabilities(model, images, augment=lambda x: next(views), tta=2)
    with torch.no_grad():
        expected = sum(model(x).softmax(dim=1) for x in (images, images * 0.5, images * 2.0)) / 3
    torch.testing.assert_close(got, expected)


def test_same_seed_same_probabilities(data):
    images, labels = data.train.images[::70], data.train.labels[::70]

    def make():
        return ex.quick_classifier(data.image_shape, data.num_classes, hidden=8)

    def run(seed):
        torch.manual_seed(123)  # the augmentation's draws must come from the fold seeds
        return out_of_fold_probabilities(
            images, labels, make, k=2, epochs=1, augment=random_affine, seed=seed
        ).probabilities

    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


@pytest.fixture(scope="module")
def data():
    return load_data("mnist_5k")


@pytest.mark.slow
def test_quick_cnn_ranks_planted_flips_better_than_the_mlp(data):
    """The stage-01 claim, on a third of the corrupted copy (about 20 CPU-seconds)."""
    corrupted = corrupted_copy(data, seed=0)
    keep = torch.arange(0, len(corrupted), 3)
    images, labels = corrupted.images[keep], corrupted.labels[keep]
    is_flip = np.isin(keep.numpy(), corrupted.key.flipped)
    mlp = out_of_fold_probabilities(
        images,
        labels,
        lambda: ex.quick_classifier(data.image_shape, 10),
        epochs=10,
        lr=1e-3,
        batch_size=128,
        one_cycle=False,
    )
    cnn = out_of_fold_probabilities(
        images, labels, lambda: ex.quick_cnn(data.image_shape, 10), augment=random_affine
    )
    assert r_precision(is_flip, suspicion(cnn.probabilities, labels)) > r_precision(
        is_flip, suspicion(mlp.probabilities, labels)
    )


def test_quick_cnn_shapes(data):
    model = ex.quick_cnn((1, 28, 28), 10)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert ex.quick_cnn((3, 32, 32), 4)(torch.rand(2, 3, 32, 32)).shape == (2, 4)


def test_r_precision_is_the_precision_at_the_number_of_errors():
    is_error = np.array([0, 1, 0, 1, 1, 0], dtype=bool)
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3])  # top 3: indices 0, 1, 3
    assert r_precision(is_error, scores) == pytest.approx(2 / 3)
    assert r_precision(is_error, -scores) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="undefined"):
        r_precision(np.zeros(3, dtype=bool), np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        r_precision(np.ones(3, dtype=bool), np.ones(4))


def test_r_precision_matches_explore_precision_at_k_on_the_suspicion_ranking():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 5, generator=gen)
    labels = torch.randint(0, 5, (200,), generator=gen)
    flipped = set(range(0, 200, 9))
    is_error = np.isin(np.arange(200), list(flipped))
    ranking = ex.rank_label_errors(logits, labels)
    expected = ex.precision_at_k(ranking, flipped)
    got = r_precision(is_error, suspicion(logits.softmax(dim=1), labels))
    assert got == pytest.approx(expected)


def test_bootstrap_of_r_precision_finds_a_better_ranking():
    rng = np.random.default_rng(0)
    is_error = rng.random(600) < 0.05
    good = is_error + 0.3 * rng.standard_normal(600)
    weak = is_error + 1.5 * rng.standard_normal(600)
    cmp = compare_bootstrap(
        r_precision, good, weak, labels=is_error, min_effect=0.05, resamples=300
    )
    assert cmp.verdict == HOLDS and cmp.low > 0


def test_suspicion_is_one_minus_the_probability_of_the_given_label():
    probabilities = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    np.testing.assert_allclose(suspicion(probabilities, torch.tensor([1, 1])), [0.7, 0.2])


def test_bad_inputs_raise_value_errors():
    images, labels = _ids(10)
    with pytest.raises(ValueError, match="labels"):
        out_of_fold_probabilities(images, labels[:5], lambda: _Spy([]))
    with pytest.raises(ValueError, match="augment"):
        out_of_fold_probabilities(images, labels, lambda: _Spy([]), tta=2)
    with pytest.raises(ValueError, match="epochs"):
        out_of_fold_probabilities(images, labels, lambda: _Spy([]), epochs=0)
