"""MLPRuns (seeded AdamW trainings of a one-hidden-layer MLP), seed loops, sweeps and selection regrets."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import mlp_runs, tune_plots  # noqa: E402
from course_utils.data import Split  # noqa: E402
from course_utils.schedules import LRRangeResult  # noqa: E402
from course_utils.surfaces import Surface  # noqa: E402


def blobs(n: int, seed: int) -> Split:
    """Three well-separated Gaussian classes as 1x2x2 'images' (4 features)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    x = centres[labels] + 0.5 * torch.randn(n, 4, generator=g)
    return Split(x.reshape(n, 1, 2, 2), labels)


@pytest.fixture(scope="module")
def runs() -> mlp_runs.MLPRuns:
    return mlp_runs.MLPRuns(blobs(120, 0), blobs(60, 1), num_classes=3, width=16, epochs=3)


def test_runs_learn_and_are_reproducible(runs):
    acc = runs.accuracy(1e-2, seed=0)
    assert acc > 0.8  # chance is 1/3
    assert runs.accuracy(1e-2, seed=0) == acc
    assert runs.in_features == 4 and runs.steps_per_epoch() == 2 and runs.steps_per_epoch(32) == 4


def test_a_diverged_run_scores_zero(runs):
    broken = Split(torch.full((6, 1, 2, 2), float("nan")), torch.zeros(6, dtype=torch.int64))
    assert runs.accuracy(1e-2, val=broken) == 0.0


def test_the_objective_reads_the_params(runs):
    params = {"lr": 1e-2, "weight_decay": 1e-4, "width": 8.0}
    assert runs.objective(params, seed=2) == runs.accuracy(1e-2, weight_decay=1e-4, width=8, seed=2)


def test_a_schedule_sets_the_lr_of_every_step(runs):
    history = runs.history(1e-2, lr_at_step=lambda step: 1e-2 / (1 + step))
    assert history.lr[-1] == pytest.approx(1e-2 / (1 + 3 * runs.steps_per_epoch()))


def test_correct_is_per_image_and_matches_the_accuracy(runs):
    hits = runs.correct(1e-2, seed=0)
    assert hits.shape == (60,) and set(np.unique(hits)) <= {0.0, 1.0}
    assert hits.mean() == pytest.approx(runs.accuracy(1e-2, seed=0))


def test_seed_loops_and_sweeps_have_one_row_per_seed(runs):
    assert mlp_runs.over_seeds(lambda s: [s, 2 * s], range(3)).tolist() == [[0, 0], [1, 2], [2, 4]]
    curves = runs.sweep("lr", [1e-6, 1e-2], range(2))
    assert curves.shape == (2, 2)
    assert (curves[:, 1] > curves[:, 0]).all()  # a tiny lr does not learn in 3 epochs
    widths = runs.sweep("width", [4, 16], range(2), lr=1e-2)
    assert widths[0, 1] == runs.accuracy(1e-2, width=16, seed=0)
    assert runs.curves(1e-2, range(2)).shape == (2, 3)
    assert runs.best_lr([1e-6, 1e-2]) == 1e-2


def test_spread_and_winner():
    assert mlp_runs.spread(np.array([[0.1, 0.5, 0.3], [0.2, 0.2, 0.2]])).tolist() == [0.4, 0.0]
    assert mlp_runs.winner({"a": 0.5, "b": 0.7, "c": 0.7}) == "b"


def test_kfold_pick_regret_counts_each_fold_as_a_single_split():
    fold_scores = {"a": np.array([0.9, 0.5, 0.5]), "b": np.array([0.6, 0.7, 0.7])}
    arbiter = {"a": 0.80, "b": 0.85}
    kfold, single = mlp_runs.kfold_pick_regret(fold_scores, arbiter)
    assert kfold == pytest.approx(0.0)  # the mean over folds picks b, the arbiter's best
    assert single == pytest.approx(0.05 / 3)  # fold 0 alone picks a


def test_selection_regrets_on_a_pool(runs):
    configs = {"slow": {"lr": 1e-6}, "fast": {"lr": 1e-2, "width": 16}}
    kfold, single = runs.selection_regrets(configs, pool_size=60, k=3, epochs=2, seed=0)
    assert kfold == 0.0 and single == 0.0  # a frozen net never wins


def test_as_json_turns_arrays_into_lists():
    out = mlp_runs.as_json({"a": np.arange(2), "b": [np.float32(0.5)], 3: {"c": np.int64(2)}})
    assert out == {"a": [0, 1], "b": [0.5], "3": {"c": 2}}


def test_seconds_times_a_call():
    assert mlp_runs.seconds(lambda: None, repeat=3) >= 0.0


# --------------------------------------------------------------------------------------------------
# the stage's figures: each returns a Figure with the expected panels
# --------------------------------------------------------------------------------------------------


def test_every_figure_draws():
    s = Surface(n_irrelevant=0)
    pts = np.array([[1e-3, 1e-4], [1e-2, 1e-3]])
    curves = np.array([[0.5, 0.9, 0.1], [0.6, 0.8, 0.1]])
    figures = [
        tune_plots.search_designs(s, pts, pts, n=20),
        tune_plots.sweep_panels({"lr": ([1e-4, 1e-3, 1e-2], curves), "wd": ([1, 2, 3], curves)}),
        tune_plots.regret_curves({"a": np.abs(curves), "b": np.abs(curves) / 2}),
        tune_plots.best_so_far_curves({"a": [0.1, 0.5, 0.3]}, {"start-up": 1.5}),
        tune_plots.batch_size_panels([32, 64, 128], curves, [1.0, 0.6, 0.4]),
        tune_plots.range_test(
            LRRangeResult([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1], [2.3] * 6, 1e-3, [2.3] * 6), 3e-3
        ),
        tune_plots.schedule_panels({"c": lambda step: 0.1}, {"c": curves}, 6, 2),
        tune_plots.log_histograms({"u": np.geomspace(1e-5, 1e-1, 50)}, (1e-5, 1e-1)),
    ]
    panels = [len(f.axes) for f in figures]
    assert panels[:2] == [3, 2] and panels[4] == 2 and panels[6] == 2
    assert all(n >= 1 for n in panels)
    for f in figures:
        plt.close(f)
