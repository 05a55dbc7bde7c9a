"""Synthetic hyper-parameter surfaces, regret curves, and the searches run on them (TPE included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import surfaces, tuning
from course_utils.surfaces import Surface


def test_the_surface_peaks_at_its_optimum_and_falls_to_the_floor():
    s = Surface(lr_opt=3e-3, wd_opt=1e-4)
    assert s({"lr": 3e-3, "weight_decay": 1e-4}) == pytest.approx(s.peak)
    assert s({"lr": 1e-5, "weight_decay": 1e-4}) == pytest.approx(s.floor, abs=1e-6)
    lrs = np.geomspace(1e-5, 1e-1, 401)
    assert lrs[np.argmax(s.score(lrs, 1e-4))] == pytest.approx(3e-3, rel=0.03)


def test_the_lr_optimum_is_narrow_on_a_log_scale():
    s = Surface(lr_width=0.3)
    one_sigma = s.score(3e-3 * 10**0.3, s.wd_opt)  # 0.3 decades away: exp(-1/2) of the height
    assert one_sigma == pytest.approx(s.floor + (s.peak - s.floor) * math.exp(-0.5))


def test_weight_decay_moves_the_score_by_at_most_its_weight():
    s = Surface(wd_weight=0.05)
    wds = np.geomspace(1e-6, 1e-1, 200)
    scores = s.score(s.lr_opt, wds)
    assert scores.max() == pytest.approx(s.peak, abs=1e-4)
    assert scores.max() - scores.min() <= 0.05 * (s.peak - s.floor) + 1e-12
    assert scores.max() - scores.min() > 0.02 * (s.peak - s.floor)


def test_irrelevant_parameters_are_in_the_space_and_ignored_by_the_score():
    s = Surface(n_irrelevant=3)
    assert list(s.space) == ["lr", "weight_decay", "irrelevant_0", "irrelevant_1", "irrelevant_2"]
    base = {"lr": 1e-3, "weight_decay": 1e-4}
    assert s({**base, "irrelevant_0": 0.1}) == s({**base, "irrelevant_0": 0.9})
    assert list(surfaces.flat_surface(0).space) == ["lr", "weight_decay"]


def test_random_surfaces_are_reproducible_and_spread_their_optimum():
    assert surfaces.random_surface(3) == surfaces.random_surface(3)
    optima = [surfaces.random_surface(i).lr_opt for i in range(200)]
    assert min(optima) >= 1e-4 and max(optima) <= 1e-2
    assert np.std(np.log10(optima)) > 0.4  # about uniform over two decades (0.58)


def test_best_so_far_and_regret_curves():
    values = [0.2, np.nan, 0.5, 0.4, 0.9]
    assert surfaces.best_so_far(values).tolist() == [0.2, 0.2, 0.5, 0.5, 0.9]
    regret = surfaces.regret_curve(values, 1.0)
    assert np.allclose(regret, [0.8, 0.8, 0.5, 0.5, 0.1])
    assert np.all(np.diff(regret) <= 0)  # regret never increases


def test_search_regrets_pairs_the_searches_by_surface():
    def first_trial_at_optimum(objective, space, n, seed):
        return [objective({"lr": objective.lr_opt, "weight_decay": objective.wd_opt})] * n

    def random(objective, space, n, seed):
        return [t.value for t in tuning.random_search(objective, space, n, seed)]

    curves = surfaces.search_regrets({"oracle": first_trial_at_optimum, "random": random}, 5, 7)
    assert curves["oracle"].shape == curves["random"].shape == (5, 7)
    assert np.allclose(curves["oracle"], 0)  # the same surface was passed to every search
    assert (curves["random"] >= 0).all()
    again = surfaces.search_regrets({"random": random}, 5, 7)
    assert np.array_equal(again["random"], curves["random"])


def test_search_regrets_rejects_a_search_with_the_wrong_length():
    with pytest.raises(ValueError, match="returned 2 values"):
        surfaces.search_regrets({"short": lambda f, space, n, seed: [0.1, 0.2]}, 1, 3)


def test_random_search_beats_a_coarse_grid_on_narrow_surfaces():
    grid = {
        "lr": surfaces.grid_values(1e-5, 1e-1, 3),
        "weight_decay": surfaces.grid_values(1e-6, 1e-1, 3),
    }
    arms = {
        "grid": lambda f, space, n, seed: [t.value for t in tuning.grid_search(f, grid)],
        "random": lambda f, space, n, seed: [
            t.value for t in tuning.random_search(f, space, n, seed)
        ],
    }
    curves = surfaces.search_regrets(arms, 100, 9, surface=surfaces.flat_surface)
    assert curves["random"][:, -1].mean() < curves["grid"][:, -1].mean() - 0.1


def test_grid_values_are_log_or_linear():
    assert surfaces.grid_values(1e-5, 1e-1, 3) == pytest.approx([1e-5, 1e-3, 1e-1])
    assert surfaces.grid_values(0.0, 1.0, 3, log=False) == pytest.approx([0.0, 0.5, 1.0])
    assert surfaces.grid_values(1e-4, 1e-2, 1) == pytest.approx([1e-3])


# --------------------------------------------------------------------------------------------------
# TPE (Optuna) and the helpers added to tuning
# --------------------------------------------------------------------------------------------------


def test_tpe_search_is_random_during_start_up_and_reproducible():
    space = {
        "lr": ("log", 1e-5, 1e-1),
        "width": ("int", 8, 64),
        "act": ("choice", ["relu", "gelu"]),
    }
    trials = tuning.tpe_search(lambda p: -abs(math.log10(p["lr"]) + 3), space, 12, seed=1)
    assert len(trials) == 12
    assert all(1e-5 <= t.params["lr"] <= 1e-1 and 8 <= t.params["width"] <= 64 for t in trials)
    assert {t.params["act"] for t in trials} <= {"relu", "gelu"}
    again = tuning.tpe_search(lambda p: -abs(math.log10(p["lr"]) + 3), space, 12, seed=1)
    assert [t.params for t in again] == [t.params for t in trials]


def test_tpe_search_concentrates_near_the_optimum_after_start_up():
    s = Surface(n_irrelevant=0)
    trials = tuning.tpe_search(s, s.space, 40, seed=0, n_startup_trials=10)
    late = np.log10([t.params["lr"] for t in trials[20:]])
    early = np.log10([t.params["lr"] for t in trials[:10]])
    target = math.log10(s.lr_opt)
    assert np.median(np.abs(late - target)) < np.median(np.abs(early - target))


def test_tpe_search_minimises_when_asked_and_survives_nan():
    values = iter([math.nan] + [float(i) for i in range(7)])
    trials = tuning.tpe_search(lambda p: next(values), {"x": ("uniform", 0, 1)}, 8, minimize=True)
    assert math.isnan(trials[0].value)
    assert tuning.best_trial(trials, minimize=True).value == 0.0


def test_points_and_random_search_pairs():
    trials = [
        tuning.Trial({"lr": 1e-3, "wd": 0.1}, 0.5),
        tuning.Trial({"lr": 1e-2, "wd": 0.2}, 0.7),
    ]
    assert tuning.points(trials, ["lr", "wd"]).tolist() == [[1e-3, 0.1], [1e-2, 0.2]]
    space = {"lr": ("log", 1e-5, 1e-1)}
    pairs = tuning.random_search_pairs(lambda p: p["lr"], space, 4, np.random.default_rng(0))
    reference = tuning.random_search(lambda p: p["lr"], space, 4, seed=0)
    assert pairs == [(t.params, t.value) for t in reference]
