"""Hyper-parameter search: log-uniform sampling, random and grid search, k-fold splits.

Shared interface: an *objective* is a function ``objective(params: dict) -> float`` (e.g. the
validation loss of a model trained with ``params``); a search returns every ``Trial(params, value)``
it ran, in order, and ``best_trial`` picks the winner. A search *space* maps each name to one of

- ``("log", low, high)``: log-uniform on [low, high] (learning rates, weight decay);
- ``("uniform", low, high)``: uniform on [low, high] (dropout, momentum);
- ``("int", low, high)``: an integer, uniform on low..high inclusive (layer widths, epochs);
- ``("choice", [a, b, ...])``: one of the listed values, equally likely (optimizer names).

Randomness comes from a NumPy ``Generator`` (``np.random.default_rng(seed)``), never the global
state.

Sources: Bergstra & Bengio, *Random Search for Hyper-Parameter Optimization*, JMLR 13 (2012); the
cs231n notes (``lr = 10 ** uniform(-6, 1)``); Karpathy's recipe, stage 5 ("random over grid
search").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

Objective = Callable[[dict[str, Any]], float]
_KINDS = ("log", "uniform", "int", "choice")


@dataclass
class Trial:
    """One evaluated configuration: the hyper-parameters and the objective's value for them."""

    params: dict[str, Any]
    value: float


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def log_uniform(
    low: float,
    high: float,
    size: int | tuple[int, ...] | None = None,
    rng: np.random.Generator | int | None = None,
) -> float | np.ndarray:
    """Samples whose natural log is uniform: exp(U(ln low, ln high)).

    Every decade between ``low`` and ``high`` gets the same share of samples (1e-5..1e-4 as often as
    1e-2..1e-1), which is what a scale parameter such as a learning rate needs. Same distribution as
    ``scipy.stats.loguniform(low, high)`` and as ``10 ** U(log10 low, log10 high)``.

    Args:
        low, high: the range, 0 < low < high.
        size: ``None`` for one float, else the shape of the returned array.
        rng: a NumPy ``Generator``, a seed, or ``None`` for a fresh unseeded generator.
    """
    if not 0 < low < high:
        raise ValueError(f"log_uniform needs 0 < low < high, got low={low!r}, high={high!r}")
    sample = np.exp(_generator(rng).uniform(math.log(low), math.log(high), size))
    return float(sample) if size is None else sample


def _check_space(space: Mapping[str, tuple[Any, ...]]) -> None:
    if not space:
        raise ValueError("space must name at least one hyper-parameter, got an empty mapping")
    for name, spec in space.items():
        if not isinstance(spec, (tuple, list)) or not spec or spec[0] not in _KINDS:
            raise ValueError(
                f"space[{name!r}] must be ('log'|'uniform'|'int', low, high) or "
                f"('choice', [values]), got {spec!r}"
            )
        kind = spec[0]
        if kind == "choice":
            if len(spec) != 2 or len(spec[1]) == 0:
                raise ValueError(f"space[{name!r}] must be ('choice', [values]), got {spec!r}")
            continue
        if len(spec) != 3:
            raise ValueError(f"space[{name!r}] must be ({kind!r}, low, high), got {spec!r}")
        low, high = spec[1], spec[2]
        if kind == "log" and not 0 < low < high:
            raise ValueError(f"space[{name!r}] needs 0 < low < high for 'log', got {spec!r}")
        if kind == "uniform" and not low < high:
            raise ValueError(f"space[{name!r}] needs low < high, got {spec!r}")
        if kind == "int" and not (int(low) == low and int(high) == high and low <= high):
            raise ValueError(f"space[{name!r}] needs integers low <= high for 'int', got {spec!r}")


def sample_space(
    space: Mapping[str, tuple[Any, ...]], rng: np.random.Generator | int | None = None
) -> dict[str, Any]:
    """One configuration drawn from ``space`` (see the module docstring), as Python scalars.

    Names are sampled in the order of ``space``, each independently of the others.
    """
    _check_space(space)
    gen = _generator(rng)
    params: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "log":
            params[name] = log_uniform(spec[1], spec[2], rng=gen)
        elif kind == "uniform":
            params[name] = float(gen.uniform(spec[1], spec[2]))
        elif kind == "int":
            params[name] = int(gen.integers(int(spec[1]), int(spec[2]), endpoint=True))
        else:
            choices = list(spec[1])
            params[name] = choices[int(gen.integers(len(choices)))]
    return params


def random_search(
    objective: Objective,
    space: Mapping[str, tuple[Any, ...]],
    n_trials: int,
    seed: int | np.random.Generator = 0,
) -> list[Trial]:
    """Evaluate ``objective`` on ``n_trials`` configurations drawn independently from ``space``.

    Unlike a grid with the same budget, every trial tries a new value of every hyper-parameter, so
    the few that matter are explored ``n_trials`` ways (Bergstra & Bengio, 2012). Same ``seed``,
    same configurations.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    _check_space(space)
    gen = _generator(seed)
    trials = []
    for _ in range(n_trials):
        params = sample_space(space, gen)
        trials.append(Trial(params, float(objective(dict(params)))))
    return trials


def grid_search(objective: Objective, grid: Mapping[str, Sequence[Any]]) -> list[Trial]:
    """Evaluate ``objective`` on every combination of the listed values (the Cartesian product).

    ``grid`` maps each name to its values; combinations are visited with the last name varying
    fastest, like nested for-loops written in the order of ``grid``.
    """
    if not grid:
        raise ValueError("grid must name at least one hyper-parameter, got an empty mapping")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or len(values) == 0:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    names = list(grid)
    trials = []
    for combo in itertools.product(*(grid[name] for name in names)):
        params = dict(zip(names, combo, strict=True))
        trials.append(Trial(params, float(objective(dict(params)))))
    return trials


def best_trial(trials: Sequence[Trial], minimize: bool = True) -> Trial:
    """The trial with the lowest (``minimize=True``) or highest value.

    NaN values (diverged runs) are skipped; ties go to the earliest trial.
    """
    finite = [t for t in trials if not math.isnan(t.value)]
    if not finite:
        raise ValueError(f"need at least one trial with a non-NaN value, got {len(trials)} trials")
    key = (lambda t: t.value) if minimize else (lambda t: -t.value)
    return min(finite, key=key)


def kfold_indices(
    n_or_labels: int | Sequence[Any] | np.ndarray,
    k: int = 5,
    seed: int = 0,
    stratified: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_indices, val_indices) pairs that split the data into ``k`` disjoint folds.

    Given an integer n: shuffled ``sklearn.model_selection.KFold``. Given labels (a list, array or
    tensor): ``StratifiedKFold`` when ``stratified`` (each fold keeps the class proportions), else
    ``KFold`` over ``len(labels)`` items. Shuffling uses ``seed``. Each index appears in exactly one
    validation fold.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    if isinstance(n_or_labels, (int, np.integer)) and not isinstance(n_or_labels, bool):
        n, labels = int(n_or_labels), None
    else:
        labels = np.asarray(
            n_or_labels.cpu() if hasattr(n_or_labels, "cpu") else n_or_labels  # a torch tensor
        )
        if labels.ndim != 1:
            raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
        n = len(labels)
    if n < k:
        raise ValueError(f"need at least k={k} items to make {k} folds, got {n}")
    if labels is not None and stratified:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n), labels))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


def tpe_search(
    objective: Objective,
    space: Mapping[str, tuple[Any, ...]],
    n_trials: int,
    seed: int = 0,
    *,
    n_startup_trials: int = 10,
    minimize: bool = False,
) -> list[Trial]:
    """Optuna's Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) on ``space``.

    The first ``n_startup_trials`` configurations are drawn at random (Optuna's default is 10); each
    later one maximises l(x) / g(x), the density of the best trials so far over that of the rest.
    ``space`` uses this module's format ("log", "uniform", "int", "choice"); ``minimize`` says which
    way the objective is better (default: higher, e.g. a validation accuracy). Same ``seed``, same
    trials. Returns every ``Trial`` in order, like ``random_search``.
    """
    import optuna  # imported here: only this search needs it

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    _check_space(space)

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, spec in space.items():
            kind = spec[0]
            if kind == "choice":
                params[name] = trial.suggest_categorical(name, list(spec[1]))
            elif kind == "int":
                params[name] = trial.suggest_int(name, int(spec[1]), int(spec[2]))
            else:
                params[name] = trial.suggest_float(name, spec[1], spec[2], log=kind == "log")
        return params

    trials: list[Trial] = []

    def run(trial: optuna.Trial) -> float:
        params = suggest(trial)
        value = float(objective(dict(params)))
        trials.append(Trial(params, value))
        return value if math.isfinite(value) else (math.inf if minimize else -math.inf)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        sampler = optuna.samplers.TPESampler(n_startup_trials=n_startup_trials, seed=seed)
        study = optuna.create_study(
            direction="minimize" if minimize else "maximize", sampler=sampler
        )
        study.optimize(run, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return trials


def points(trials: Sequence[Trial], names: Sequence[str]) -> np.ndarray:
    """The trials' values of the hyper-parameters ``names`` as an array of shape (n_trials, len(names))."""
    return np.array([[float(t.params[name]) for name in names] for t in trials], dtype=np.float64)


def random_search_pairs(
    objective: Objective,
    space: Mapping[str, tuple[Any, ...]],
    n_trials: int,
    rng: np.random.Generator | int | None = None,
) -> list[tuple[dict[str, Any], float]]:
    """``random_search`` returning ``[(params, value), ...]``: the format of stage 05's exercise."""
    return [(t.params, t.value) for t in random_search(objective, space, n_trials, _generator(rng))]
