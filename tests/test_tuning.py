"""Log-uniform sampling against scipy, random and grid search, k-fold splits against sklearn."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold

from course_utils.tuning import (
    Trial,
    best_trial,
    grid_search,
    kfold_indices,
    log_uniform,
    random_search,
    sample_space,
)

# --------------------------------------------------------------------------------------------------
# log-uniform
# --------------------------------------------------------------------------------------------------


def test_log_uniform_logs_are_uniform():
    samples = log_uniform(1e-5, 1e-1, size=20000, rng=0)
    assert samples.shape == (20000,)
    assert samples.min() >= 1e-5 and samples.max() <= 1e-1
    test = scipy.stats.kstest(np.log(samples), "uniform", args=(math.log(1e-5), math.log(1e4)))
    assert test.pvalue > 1e-3


def test_log_uniform_has_the_distribution_of_scipy_loguniform():
    ours = log_uniform(3e-4, 0.7, size=5000, rng=np.random.default_rng(1))
    theirs = scipy.stats.loguniform(3e-4, 0.7).rvs(size=5000, random_state=2)
    assert scipy.stats.ks_2samp(ours, theirs).pvalue > 1e-3


def test_log_uniform_puts_the_same_share_in_every_decade():
    samples = log_uniform(1e-6, 1.0, size=60000, rng=3)
    counts = np.histogram(np.log10(samples), bins=6, range=(-6, 0))[0]
    assert np.allclose(counts / 60000, 1 / 6, atol=0.01)


def test_log_uniform_returns_a_float_without_size_and_is_reproducible():
    value = log_uniform(0.1, 10.0, rng=5)
    assert isinstance(value, float) and 0.1 <= value <= 10.0
    assert value == log_uniform(0.1, 10.0, rng=5)
    assert log_uniform(0.1, 10.0, size=(2, 3), rng=0).shape == (2, 3)


@settings(max_examples=40, deadline=None)
@given(low_exp=st.floats(-8, 3), span=st.floats(1e-3, 8), seed=st.integers(0, 2**32 - 1))
def test_log_uniform_stays_in_range(low_exp, span, seed):
    low, high = 10.0**low_exp, 10.0 ** (low_exp + span)
    samples = log_uniform(low, high, size=50, rng=seed)
    assert np.all(samples >= low * (1 - 1e-12)) and np.all(samples <= high * (1 + 1e-12))


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 1.0), (2.0, 1.0)])
def test_log_uniform_rejects_bad_ranges(low, high):
    with pytest.raises(ValueError, match="0 < low < high"):
        log_uniform(low, high)


# --------------------------------------------------------------------------------------------------
# search spaces and searches
# --------------------------------------------------------------------------------------------------

SPACE = {
    "lr": ("log", 1e-5, 1e-1),
    "dropout": ("uniform", 0.0, 0.5),
    "width": ("int", 16, 18),
    "optimizer": ("choice", ["adam", "sgd"]),
}


def test_sample_space_respects_kinds_and_ranges():
    rng = np.random.default_rng(0)
    draws = [sample_space(SPACE, rng) for _ in range(300)]
    assert all(1e-5 <= d["lr"] <= 1e-1 and isinstance(d["lr"], float) for d in draws)
    assert all(0.0 <= d["dropout"] <= 0.5 for d in draws)
    assert {d["width"] for d in draws} == {16, 17, 18}  # both ends included
    assert all(isinstance(d["width"], int) for d in draws)
    assert {d["optimizer"] for d in draws} == {"adam", "sgd"}
    assert list(draws[0]) == list(SPACE)


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({}, "at least one hyper-parameter"),
        ({"lr": ("normal", 0, 1)}, "must be"),
        ({"lr": ("log", 0.0, 1.0)}, "0 < low < high"),
        ({"p": ("uniform", 1.0, 0.5)}, "low < high"),
        ({"n": ("int", 1.5, 3)}, "integers low <= high"),
        ({"opt": ("choice", [])}, r"\('choice', \[values\]\)"),
        ({"lr": ("log", 1e-3)}, r"\('log', low, high\)"),
    ],
)
def test_sample_space_rejects_bad_specs(space, match):
    with pytest.raises(ValueError, match=match):
        sample_space(space, 0)


def test_random_search_runs_independent_trials_reproducibly():
    seen = []

    def objective(params):
        seen.append(dict(params))
        params["lr"] = -1.0  # mutating the argument must not change the recorded trial
        return seen[-1]["lr"] * 2

    trials = random_search(objective, SPACE, n_trials=30, seed=7)
    assert len(trials) == 30 and all(isinstance(t, Trial) for t in trials)
    assert [t.params for t in trials] == seen
    assert all(t.value == pytest.approx(2 * t.params["lr"]) for t in trials)
    assert len({t.params["lr"] for t in trials}) == 30
    again = random_search(lambda p: 0.0, SPACE, n_trials=30, seed=7)
    assert [t.params for t in again] == seen


def test_random_search_rejects_bad_trial_counts():
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        random_search(lambda p: 0.0, SPACE, n_trials=0)


def test_grid_search_visits_the_cartesian_product_in_loop_order():
    grid = {"lr": [1e-3, 1e-2], "wd": [0.0, 1e-4, 1e-3]}
    trials = grid_search(lambda p: p["lr"] + p["wd"], grid)
    expected = [{"lr": a, "wd": b} for a, b in itertools.product(grid["lr"], grid["wd"])]
    assert [t.params for t in trials] == expected
    assert sorted(map(str, expected)) == sorted(map(str, ParameterGrid(grid)))
    assert [t.value for t in trials] == [p["lr"] + p["wd"] for p in expected]


@pytest.mark.parametrize("grid", [{}, {"lr": []}, {"lr": "abc"}])
def test_grid_search_rejects_bad_grids(grid):
    with pytest.raises(ValueError):
        grid_search(lambda p: 0.0, grid)


def test_best_trial_minimises_or_maximises_and_skips_nan():
    trials = [Trial({"a": 1}, 0.5), Trial({"a": 2}, math.nan), Trial({"a": 3}, 0.2)]
    assert best_trial(trials).params == {"a": 3}
    assert best_trial(trials, minimize=False).params == {"a": 1}
    with pytest.raises(ValueError, match="non-NaN value"):
        best_trial([Trial({}, math.nan)])
    with pytest.raises(ValueError, match="non-NaN value"):
        best_trial([])


# --------------------------------------------------------------------------------------------------
# k-fold
# --------------------------------------------------------------------------------------------------


def assert_same_splits(ours, theirs):
    theirs = list(theirs)
    assert len(ours) == len(theirs)
    for (train_a, val_a), (train_b, val_b) in zip(ours, theirs, strict=True):
        assert np.array_equal(train_a, train_b) and np.array_equal(val_a, val_b)


def test_kfold_of_a_count_matches_sklearn_kfold():
    ours = kfold_indices(23, k=4, seed=3)
    assert_same_splits(ours, KFold(4, shuffle=True, random_state=3).split(np.zeros(23)))


def test_kfold_of_labels_matches_sklearn_stratified_kfold():
    labels = np.array([0] * 12 + [1] * 6 + [2] * 9)
    ours = kfold_indices(labels, k=3, seed=1)
    expected = StratifiedKFold(3, shuffle=True, random_state=1).split(np.zeros(27), labels)
    assert_same_splits(ours, expected)
    assert_same_splits(kfold_indices(torch.as_tensor(labels), k=3, seed=1), iter(ours))
    unstratified = KFold(3, shuffle=True, random_state=1).split(np.zeros(27))
    assert_same_splits(kfold_indices(labels.tolist(), k=3, seed=1, stratified=False), unstratified)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), data=st.data())
def test_kfold_validation_folds_partition_the_data(n, data):
    k = data.draw(st.integers(2, n))
    folds = kfold_indices(n, k=k, seed=0)
    assert len(folds) == k
    validation = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(validation), np.arange(n))
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0 and train.size + val.size == n


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 1), "k must be an integer >= 2"),
        ((3, 5), "need at least k=5 items"),
        ((np.zeros((4, 2)), 2), "labels must be one-dimensional"),
    ],
)
def test_kfold_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        kfold_indices(*args)
