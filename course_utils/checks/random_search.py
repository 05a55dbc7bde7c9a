"""Check for stage 05's ``random_search(objective, space, n_trials, rng) -> list[(params, value)]``.

``space`` maps names to ``("log", low, high)`` or ``("uniform", low, high)``; one call of ``objective`` per
trial, the trials in the order they were run.

What the check verifies:

- value: every parameter inside its bounds; each trial's value is ``objective(params)``; "log" parameters
  spread evenly over the decades and "uniform" ones evenly over the range (Kolmogorov-Smirnov tests at
  the fixed false-alarm rate ``_randomness.KS_ALPHA``, the likely mix-up named only if its own test
  accepts).
- randomness: one fresh value of every parameter per trial (not a grid); the same seed gives the same
  trials; a different generator gives different trials (a seed fixed inside, ``np.random.seed``, a grid
  fail, the cause named from the evidence); NumPy's global random state untouched (told also when the
  trials are wrong).
- input untouched: the ``space`` dict is compared with a copy kept aside (told also when the trials are
  wrong).
- every argument: one to three parameters of both kinds, n_trials from 1 to 200 (hidden: 600, past any
  natural chunk size such as 512 draws at a time).
- contract: a list of ``(params, value)`` pairs, one objective call per trial, returned in the order the
  trials ran (a list sorted by value fails), a new params dict per trial; hidden: no library search.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from course_utils.checks._library_calls import _reference_case
from course_utils.checks._randomness import (
    GLOBAL_STATE_HINT,
    DrawAudit,
    ignores_generator_hint,
    ks_critical,
)
from course_utils.checks._report import CheckResult, Report, describe
from course_utils.checks._values import _as_float, _ks_uniform

__all__ = ["check_random_search"]


def _search_objective() -> tuple[Callable[[dict[str, Any]], float], list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def objective(params: dict[str, Any]) -> float:
        calls.append(dict(params))
        return float(sum(math.log10(abs(v) + 1e-12) ** 2 + v for v in params.values()))

    return objective, calls


def _key(params: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, float(v)) for k, v in params.items()))


def _short(params: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k!r}: {float(v):.4g}" for k, v in params.items()) + "}"


def _random_search_case(
    report: Report,
    learner_fn: Callable[..., Any],
    space: dict[str, tuple[str, float, float]],
    n_trials: int,
    seed: int,
) -> None:
    objective, calls = _search_objective()
    given = copy.deepcopy(space)
    first = DrawAudit(lambda rng: learner_fn(objective, given, n_trials, rng), seed)
    trials = first.value
    if given != space:  # side effects are told whether or not the trials are right
        report.note(
            f"changes its input in place (space): {space} became {given}; read the space, do not "
            "write to it"
        )
    if first.touched_global:
        report.note(GLOBAL_STATE_HINT)
    if not isinstance(trials, (list, tuple)):
        report.fail(f"should return a list of (params, value) pairs, got {describe(trials)}")
    if len(trials) != n_trials:
        report.fail(f"expected {n_trials} trials, got {len(trials)}")
    if len(calls) != n_trials:
        report.fail(f"the objective should be called once per trial ({n_trials}), got {len(calls)}")
    dicts = [t[0] for t in trials if isinstance(t, (tuple, list)) and t and isinstance(t[0], dict)]
    seen = {_key(c) for c in calls if all(isinstance(v, (int, float)) for v in c.values())}
    if len(dicts) == len(trials) > 1 and len(seen) > 1 and all(d == dicts[-1] for d in dicts):
        report.fail(
            "every trial holds the same params, those of the last trial run, although the objective "
            "saw different ones: one dict is reused and overwritten in every trial; build a new "
            "dict for each trial"
        )
    params_list = []
    for i, trial in enumerate(trials):
        if not (
            isinstance(trial, (tuple, list)) and len(trial) == 2 and isinstance(trial[0], dict)
        ):
            report.fail(f"trial {i} should be a (params_dict, value) pair, got {describe(trial)}")
        params, value = trial
        if set(params) != set(space):
            report.fail(f"trial {i} has parameters {sorted(params)}, expected {sorted(space)}")
        value = _as_float(report, value, f"the value of trial {i}")
        expected_value = objective(dict(params))
        calls.pop()
        if not math.isclose(value, expected_value, rel_tol=1e-9, abs_tol=1e-12):
            report.fail(
                f"trial {i}: value {value:.6g} is not objective(params) = {expected_value:.6g}; "
                "store the objective's value for that trial's params"
            )
        for name, (kind, low, high) in space.items():
            v = float(params[name])
            if not low * (1 - 1e-9) - 1e-12 <= v <= high * (1 + 1e-9) + 1e-12:
                extra = ""
                if kind == "log" and v > 0 and math.log(low) <= math.log10(v) <= math.log(high):
                    extra = ". Looks like: 10 ** uniform(ln low, ln high); mix of log10 and ln"
                elif kind == "log" and math.log(low) <= v <= math.log(high):
                    extra = ". Looks like: the exponent was returned; use exp(u)"
                report.fail(f"trial {i}: {name}={v:.4g} is outside [{low:g}, {high:g}]{extra}")
        params_list.append(params)
    for name in space:
        distinct = len({float(p[name]) for p in params_list})
        if distinct != n_trials:
            report.fail(
                f"only {distinct} distinct values of {name!r} in {n_trials} trials. Looks like: a "
                "grid or a value reused across trials; draw a fresh value of every parameter in "
                "every trial"
            )
    ran = [dict(c) for c in calls]
    returned = [dict(p) for p in params_list]
    if returned != ran and sorted(map(_key, returned)) == sorted(map(_key, ran)):
        values = [float(t[1]) for t in trials]
        how = (
            "sorted by value"
            if values in (sorted(values), sorted(values, reverse=True))
            else "in another order"
        )
        report.fail(
            f"the trials are returned {how}, not in the order they were run (trial 0 ran with "
            f"{_short(ran[0])}, your list starts with {_short(returned[0])}); return them in "
            "order, and sort a copy when you need the best"
        )
    again = learner_fn(
        _search_objective()[0], copy.deepcopy(space), n_trials, np.random.default_rng(seed)
    )
    if [dict(t[0]) for t in again] != returned:
        report.fail(
            "two runs with the same seeded rng gave different trials: draw every sample from the "
            "rng argument, not np.random or random"
        )
    other = DrawAudit(
        lambda rng: learner_fn(_search_objective()[0], copy.deepcopy(space), n_trials, rng),
        seed + 1000,
    )
    if other.touched_global:
        report.note(GLOBAL_STATE_HINT)
    other_params = [dict(t[0]) for t in other.value]
    if sorted(map(_key, other_params)) == sorted(map(_key, returned)):
        reordered = other_params != returned
        report.fail(
            f"two different generators (seeds {seed} and {seed + 1000}) gave the same trials"
            + (" in another order" if reordered else "")
            + ". Looks like: "
            + ignores_generator_hint(first, other, reordered)
        )
    if n_trials < 50:
        return
    for name, (kind, low, high) in space.items():
        values = np.array([float(p[name]) for p in params_list])
        log_u = (np.log(values) - math.log(low)) / (math.log(high) - math.log(low))
        lin_u = (values - low) / (high - low)
        log_d, lin_d = _ks_uniform(log_u), _ks_uniform(lin_u)
        critical = ks_critical(n_trials)
        if kind == "log" and log_d > critical:
            hint = (
                ". Looks like: sampled uniformly in linear space; sample the exponent uniformly"
                if lin_d <= critical
                else ""
            )
            report.fail(
                f"{name!r} is a 'log' parameter: its samples should be spread evenly over the "
                f"decades of [{low:g}, {high:g}], but {np.mean(log_u > 0.8):.0%} of them are in "
                f"the top fifth of the log range{hint}"
            )
        if kind == "uniform" and lin_d > critical:
            hint = (
                ". Looks like: sampled on a log scale; 'uniform' parameters are sampled linearly"
                if log_d <= critical
                else ""
            )
            report.fail(
                f"{name!r} is a 'uniform' parameter: its samples should be uniform on [{low:g}, "
                f"{high:g}], but {np.mean(lin_u < 0.5):.0%} are in the lower half{hint}"
            )


def check_random_search(
    learner_fn: Callable[..., list[tuple[dict[str, Any], float]]], *, hidden: bool = False
) -> CheckResult:
    """Check ``random_search(objective, space, n_trials, rng) -> list[(params, value)]``.

    Expected: ``n_trials`` independent trials; each draws every parameter from ``space`` with the
    NumPy Generator ``rng`` (``("log", low, high)``: log-uniform; ``("uniform", low, high)``:
    uniform), calls ``objective(params)`` once and keeps ``(params, value)``, in order. Tried with
    200 trials of ``{"lr": ("log", 1e-6, 1e-1), "dropout": ("uniform", 0.01, 0.9)}``: values in
    range, one new value per trial (not a grid), decades evenly covered for "log", reproducible from
    the rng. Hidden: one parameter, one trial, three parameters, 600 trials.
    """
    report = Report("random_search")
    cases: list[tuple[dict[str, tuple[str, float, float]], int, int]] = [
        ({"lr": ("log", 1e-6, 1e-1), "dropout": ("uniform", 0.01, 0.9)}, 200, 0),
    ]
    if hidden:
        cases += [
            ({"weight_decay": ("log", 1e-6, 1e-2)}, 60, 1),
            ({"lr": ("log", 1e-4, 1.0)}, 1, 2),
            (
                {
                    "lr": ("log", 1e-5, 1e-1),
                    "momentum": ("uniform", 0.5, 0.99),
                    "weight_decay": ("log", 1e-6, 1e-3),
                },
                80,
                3,
            ),
            ({"lr": ("log", 1e-5, 1e-1)}, 600, 4),  # past any natural chunk size (512)
        ]
    for space, n_trials, seed in cases:
        with report.case(f"space={space}, n_trials={n_trials}"):
            _random_search_case(report, learner_fn, space, n_trials, seed)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.tuning.random_search",
                "course_utils.tuning.sample_space",
                "course_utils.tuning.log_uniform",
                "sklearn.model_selection.ParameterSampler",
                "scipy.stats.loguniform",
            ],
            lambda: learner_fn(
                _search_objective()[0], {"lr": ("log", 1e-4, 1.0)}, 3, np.random.default_rng(0)
            ),
        )
    return report.finish("trials are independent draws from the space, scored by the objective")
