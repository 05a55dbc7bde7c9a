"""Tests of course_utils.split_noise: repeated k-fold scores and the deviations of their estimates."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.split_noise import binomial_standard_error, deviations, repeated_kfold


def test_repeated_kfold_validates_every_example_once_per_repeat():
    labels = np.repeat(np.arange(3), 10)
    seen: list[tuple[int, np.ndarray]] = []

    def score(train_index, val_index, run_seed):
        assert not set(train_index) & set(val_index)
        seen.append((run_seed, val_index))
        return float(len(val_index))

    scores = repeated_kfold(labels, score, k=5, repeats=2, seed=4)
    assert scores.shape == (2, 5) and (scores == 6).all()
    for r in range(2):
        chunk = seen[5 * r : 5 * r + 5]
        assert [s for s, _ in chunk] == [100 * (4 + r) + f for f in range(5)]
        assert sorted(np.concatenate([v for _, v in chunk]).tolist()) == list(range(30))
    assert not np.array_equal(seen[0][1], seen[5][1])  # a different shuffle per repeat


def test_deviations_match_their_formulas():
    scores = np.array([[0.90, 0.92, 0.94], [0.91, 0.95, 0.93]])
    grand = scores.mean()
    single, kfold = deviations(scores)
    np.testing.assert_allclose(single, np.abs(scores - grand).mean(axis=1))
    np.testing.assert_allclose(kfold, np.abs(scores.mean(axis=1) - grand))


def test_kfold_mean_lands_closer_than_one_split_on_independent_noise():
    rng = np.random.default_rng(0)
    scores = 0.9 + 0.01 * rng.standard_normal((200, 5))
    single, kfold = deviations(scores)
    # E|N(0, s)| = s sqrt(2 / pi); the mean of 5 has s / sqrt(5)
    assert single.mean() == pytest.approx(0.01 * np.sqrt(2 / np.pi), rel=0.1)
    assert kfold.mean() == pytest.approx(0.01 * np.sqrt(2 / np.pi) / np.sqrt(5), rel=0.15)


def test_binomial_standard_error():
    assert binomial_standard_error(0.9, 100) == pytest.approx(0.03)
    with pytest.raises(ValueError):
        binomial_standard_error(1.5, 10)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="repeats"):
        repeated_kfold(np.arange(10) % 2, lambda *a: 0.0, repeats=0)
    with pytest.raises(ValueError, match="shape"):
        deviations(np.ones(5))
