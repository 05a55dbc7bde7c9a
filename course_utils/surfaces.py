"""Synthetic hyper-parameter surfaces: a free stand-in for "train and read the validation accuracy".

Comparing two search strategies needs many repeats (a search is itself random), which real trainings
cannot afford. A ``Surface`` has the shape Bergstra & Bengio (2012) report for real networks: one
important parameter with a narrow optimum on a log scale (the learning rate), one weakly important
one (the weight decay) and a few that do nothing::

    g_lr = exp(-(log10(lr / lr_opt))**2 / (2 * lr_width**2))       lr_width in decades
    g_wd = exp(-(log10(wd / wd_opt))**2 / (2 * wd_width**2))
    score = floor + (peak - floor) * g_lr * (1 - wd_weight * (1 - g_wd))

so the score is ``peak`` at (lr_opt, wd_opt), ``floor`` far from lr_opt (a diverged or frozen run),
and the weight decay moves it by at most ``wd_weight`` of the range. The ``irrelevant_i`` parameters
of ``Surface.space`` are sampled by a search but ignored by the score.

A search's *regret* after t trials is ``peak - max(score of trials 1..t)`` (``regret_curve``);
``search_regrets`` runs several searches on the same random surfaces, so their regrets are paired by
surface (the same seed draws the surface and seeds every search).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: A search: ``search(objective, space, n_trials, seed) -> [value of trial 1, 2, ...]``.
Search = Callable[
    [Callable[[dict[str, Any]], float], Mapping[str, tuple], int, int], Sequence[float]
]

LR_RANGE = (1e-5, 1e-1)
WD_RANGE = (1e-6, 1e-1)


@dataclass(frozen=True)
class Surface:
    """A made-up validation accuracy over (lr, weight decay, irrelevant parameters); see the module.

    Defaults: optimum at lr 3e-3 and weight decay 1e-4, ``lr_width`` 0.3 decades (narrow: a tenth of
    the four-decade lr range is within 0.2 of the peak height), ``wd_width`` 1 decade, ``wd_weight``
    0.05, ``peak`` 0.95, ``floor`` 0.1 (chance for ten classes), three irrelevant parameters.
    """

    lr_opt: float = 3e-3
    wd_opt: float = 1e-4
    lr_width: float = 0.3
    wd_width: float = 1.0
    wd_weight: float = 0.05
    peak: float = 0.95
    floor: float = 0.1
    n_irrelevant: int = 3

    @property
    def space(self) -> dict[str, tuple]:
        """The search space (``course_utils.tuning`` format): lr and weight decay log-uniform on
        ``LR_RANGE`` and ``WD_RANGE``, each irrelevant parameter uniform on [0, 1]."""
        space: dict[str, tuple] = {"lr": ("log", *LR_RANGE), "weight_decay": ("log", *WD_RANGE)}
        for i in range(self.n_irrelevant):
            space[f"irrelevant_{i}"] = ("uniform", 0.0, 1.0)
        return space

    def score(self, lr: float | np.ndarray, weight_decay: float | np.ndarray) -> np.ndarray:
        """The score at ``lr`` and ``weight_decay`` (arrays broadcast together)."""
        u = np.log10(np.asarray(lr, dtype=np.float64) / self.lr_opt)
        v = np.log10(np.asarray(weight_decay, dtype=np.float64) / self.wd_opt)
        g_lr = np.exp(-(u**2) / (2 * self.lr_width**2))
        g_wd = np.exp(-(v**2) / (2 * self.wd_width**2))
        return self.floor + (self.peak - self.floor) * g_lr * (1 - self.wd_weight * (1 - g_wd))

    def __call__(self, params: Mapping[str, Any]) -> float:
        """The objective a search calls: ``params`` holds "lr" and "weight_decay" (others ignored)."""
        return float(self.score(params["lr"], params["weight_decay"]))


def random_surface(rng: np.random.Generator | int | None = None, **fixed: Any) -> Surface:
    """A ``Surface`` whose optimum is drawn log-uniformly: lr_opt in [1e-4, 1e-2], wd_opt in
    [1e-5, 1e-2] (so a search cannot know where it is in advance); ``fixed`` sets other fields."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    lr_opt = 10 ** gen.uniform(-4, -2)
    wd_opt = 10 ** gen.uniform(-5, -2)
    return Surface(lr_opt=float(lr_opt), wd_opt=float(wd_opt), **fixed)


def best_so_far(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` (NaN, a diverged trial, counts as -inf), shape (n,)."""
    v = np.asarray(values, dtype=np.float64)
    return np.maximum.accumulate(np.where(np.isnan(v), -np.inf, v))


def regret_curve(values: Sequence[float] | np.ndarray, best: float) -> np.ndarray:
    """``best - best_so_far(values)``: how far the search still is from the optimum after each trial."""
    return best - best_so_far(values)


def search_regrets(
    searches: Mapping[str, Search],
    n_surfaces: int,
    n_trials: int,
    *,
    seed: int = 0,
    surface: Callable[[np.random.Generator], Surface] = random_surface,
) -> dict[str, np.ndarray]:
    """Regret curves of each search on ``n_surfaces`` random surfaces: ``{name: (n_surfaces, n_trials)}``.

    Surface i is ``surface(default_rng(seed + i))`` and every search gets it with seed ``seed + i``,
    so row i of every array is paired (same surface, same seed).
    """
    if n_surfaces < 1 or n_trials < 1:
        raise ValueError(f"need n_surfaces, n_trials >= 1, got {n_surfaces}, {n_trials}")
    curves: dict[str, list[np.ndarray]] = {name: [] for name in searches}
    for i in range(n_surfaces):
        s = surface(np.random.default_rng(seed + i))
        for name, search in searches.items():
            values = list(search(s, s.space, n_trials, seed + i))
            if len(values) != n_trials:
                raise ValueError(f"search {name!r} returned {len(values)} values, not {n_trials}")
            curves[name].append(regret_curve(values, s.peak))
    return {name: np.stack(rows) for name, rows in curves.items()}


def grid_values(low: float, high: float, n: int, log: bool = True) -> list[float]:
    """``n`` grid values spanning [low, high], evenly spaced in log (``log``) or linear scale."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == 1:
        return [math.sqrt(low * high) if log else (low + high) / 2]
    values = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    return [float(v) for v in values]


def flat_surface(rng: np.random.Generator | int | None = None) -> Surface:
    """``random_surface`` with no irrelevant parameter: the learning rate and weight decay only."""
    return random_surface(rng, n_irrelevant=0)
