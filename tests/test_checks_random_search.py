"""Tests of ``check_random_search`` (course_utils/checks/random_search.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import tuning
from course_utils.checks import random_search as checks
from tests.check_helpers import assert_fails, assert_passes, from_cell, not_implemented


def _draw(kind, low, high, rng):
    if kind == "log":
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def search_reference_style(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: _draw(*spec, rng) for name, spec in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_vectorised(objective, space, n_trials, rng):
    columns = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            columns[name] = 10 ** rng.uniform(np.log10(low), np.log10(high), n_trials)
        else:
            columns[name] = rng.uniform(low, high, n_trials)
    trials = []
    for i in range(n_trials):
        params = {name: float(values[i]) for name, values in columns.items()}
        trials.append((params, objective(params)))
    return trials


def search_grid(objective, space, n_trials, rng):
    per_axis = max(1, round(n_trials ** (1 / len(space))))
    axes = {}
    for name, (kind, low, high) in space.items():
        if kind == "log":
            axes[name] = np.geomspace(low, high, per_axis)
        else:
            axes[name] = np.linspace(low, high, per_axis)
    names = list(axes)
    trials = []
    for i in range(n_trials):
        params = {}
        rest = i
        for name in names:
            params[name] = float(axes[name][rest % per_axis])
            rest //= per_axis
        trials.append((params, objective(params)))
    return trials


def search_linear_everywhere(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: float(rng.uniform(low, high)) for name, (_, low, high) in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_log_everywhere(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {name: _draw("log", low, high, rng) for name, (_, low, high) in space.items()}
        trials.append((params, objective(params)))
    return trials


def search_mixed_bases(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {}
        for name, (kind, low, high) in space.items():
            if kind == "log":
                params[name] = float(10 ** rng.uniform(np.log(low), np.log(high)))
            else:
                params[name] = float(rng.uniform(low, high))
        trials.append((params, objective(params)))
    return trials


def search_global_rng(objective, space, n_trials, rng):
    return search_reference_style(objective, space, n_trials, np.random.default_rng())


def search_wrong_values(objective, space, n_trials, rng):
    return [(params, 0.0) for params, _ in search_reference_style(objective, space, n_trials, rng)]


def log_uniform(low, high, rng):
    """A learner's own helper that shares its name with the course's reference."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def search_with_own_helper(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {
            name: log_uniform(low, high, rng) if kind == "log" else float(rng.uniform(low, high))
            for name, (kind, low, high) in space.items()
        }
        trials.append((params, objective(params)))
    return trials


def search_calls_reference(objective, space, n_trials, rng):
    trials = tuning.random_search(objective, space, n_trials, seed=rng)
    return [(t.params, t.value) for t in trials]


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [search_reference_style, search_vectorised, search_with_own_helper]
)
def test_random_search_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_random_search, answer, hidden)


def test_random_search_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_random_search, search_calls_reference)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (search_grid, "a grid"),
        (search_linear_everywhere, "sampled uniformly in linear space"),
        (search_log_everywhere, "sampled on a log scale"),
        (search_mixed_bases, "mix of log10 and ln"),
        (search_global_rng, "draw every sample from the rng argument"),
        (search_wrong_values, "is not objective(params)"),
    ],
)
def test_random_search_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_random_search, answer, fragment)


def test_random_search_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_random_search, not_implemented, "not implemented yet")


def test_random_search_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_random_search,
        search_calls_reference,
        "course_utils.tuning.random_search",
        hidden=True,
    )


# --- randomness, order, the space untouched (issue 17, classes 2, 3 and 5) ---


def search_seeded_inside(objective, space, n_trials, rng):
    return search_reference_style(objective, space, n_trials, np.random.default_rng(0))


def search_global_seed(objective, space, n_trials, rng):
    np.random.seed(0)
    return search_reference_style(objective, space, n_trials, np.random)


def search_sorted_by_value(objective, space, n_trials, rng):
    return sorted(search_reference_style(objective, space, n_trials, rng), key=lambda t: t[1])


def search_reversed(objective, space, n_trials, rng):
    return search_reference_style(objective, space, n_trials, rng)[::-1]


def search_one_dict_reused(objective, space, n_trials, rng):
    params, trials = {}, []
    for _ in range(n_trials):
        for name, spec in space.items():
            params[name] = _draw(*spec, rng)
        trials.append((params, objective(params)))
    return trials


def search_pops_the_space(objective, space, n_trials, rng):
    kinds = {name: space.pop(name) for name in list(space)}  # empties the caller's dict
    return search_reference_style(objective, kinds, n_trials, rng)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (search_seeded_inside, ["gave the same trials", "never drawn from"]),
        (search_global_seed, ["gave the same trials", "re-seeded inside (np.random.seed)"]),
        (search_sorted_by_value, ["returned sorted by value, not in the order they were run"]),
        (search_reversed, ["returned in another order, not in the order they were run"]),
        (search_one_dict_reused, ["one dict is reused and overwritten"]),
        (search_pops_the_space, ["changes its input in place (space)"]),
    ],
)
def test_random_search_fails_generator_order_and_side_effect_bugs(capsys, answer, fragments):
    assert_fails(capsys, checks.check_random_search, answer, *fragments)


def search_with_child_generators(objective, space, n_trials, rng):
    # sklearn.model_selection.ParameterSampler(...) would do this; here by hand, one child per trial
    children = rng.spawn(n_trials)
    return [
        ((params := {n: _draw(*s, child) for n, s in space.items()}), objective(params))
        for child in children
    ]


def search_as_tuples_of_lists(objective, space, n_trials, rng):
    return tuple([p, np.float64(v)] for p, v in search_vectorised(objective, space, n_trials, rng))


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [search_with_child_generators, search_as_tuples_of_lists])
def test_random_search_passes_unusual_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_random_search, answer, hidden)


# --- the learner's own helpers vs the reference, in a kernel and through the channel (issue 17) ---

_SEARCH_BODY = """
def random_search(objective, space, n_trials, rng):
    trials = []
    for _ in range(n_trials):
        params = {}
        for name, (kind, low, high) in space.items():
            params[name] = (
                float(log_uniform(low, high, rng=rng)) if kind == "log" else float(rng.uniform(low, high))
            )
        trials.append((params, objective(params)))
    return trials
"""

# The cell defines its own helper named like the course's tuning.log_uniform: a correct answer.
CELL_WITH_OWN_HELPER = (
    """
import numpy as np


def log_uniform(low, high, rng):
    return np.exp(rng.uniform(np.log(low), np.log(high)))
"""
    + _SEARCH_BODY
)

# The same answer with the helper imported from the course: it calls the reference.
CELL_IMPORTING_THE_REFERENCE = "from course_utils.tuning import log_uniform\n" + _SEARCH_BODY


def search_with_inner_helper(objective, space, n_trials, rng):
    def log_uniform(low, high):  # a nested helper named like the reference
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    trials = []
    for _ in range(n_trials):
        params = {
            n: log_uniform(lo, hi) if k == "log" else float(rng.uniform(lo, hi))
            for n, (k, lo, hi) in space.items()
        }
        trials.append((params, objective(params)))
    return trials


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(from_cell(CELL_WITH_OWN_HELPER, "random_search"), id="helper-in-its-cell"),
        pytest.param(search_with_inner_helper, id="nested-helper"),
        pytest.param(search_with_own_helper, id="helper-in-its-module"),
    ],
)
def test_random_search_hidden_passes_an_answer_with_a_helper_named_like_the_reference(
    capsys, answer
):
    """A false zero under trusted grading before: the stand-in's globals did not hold the helper."""
    assert_passes(capsys, checks.check_random_search, answer, hidden=True)


def test_random_search_hidden_fails_the_same_answer_importing_the_reference(capsys):
    answer = from_cell(CELL_IMPORTING_THE_REFERENCE, "random_search")
    assert_passes(capsys, checks.check_random_search, answer)  # right values: only hidden objects
    assert_fails(
        capsys,
        checks.check_random_search,
        answer,
        "your answer calls course_utils.tuning.log_uniform",
        hidden=True,
    )


# --- past 512 trials (issue 17, class 4) ---


def search_in_chunks_of_512(objective, space, n_trials, rng):
    """Draws 512 values per parameter once and wraps around: trials past 512 repeat earlier ones."""
    draws = {n: [_draw(*spec, rng) for _ in range(512)] for n, spec in space.items()}
    trials = []
    for i in range(n_trials):
        params = {n: values[i % 512] for n, values in draws.items()}
        trials.append((params, objective(params)))
    return trials


def search_in_chunks_of_256(objective, space, n_trials, rng):
    """Draws 256 trials at a time, as many chunks as needed: correct."""
    trials = []
    while len(trials) < n_trials:
        chunk = min(256, n_trials - len(trials))
        columns = {n: [_draw(*spec, rng) for _ in range(chunk)] for n, spec in space.items()}
        for i in range(chunk):
            params = {n: values[i] for n, values in columns.items()}
            trials.append((params, objective(params)))
    return trials


def test_random_search_hidden_goes_past_512_trials(capsys):
    assert_passes(capsys, checks.check_random_search, search_in_chunks_of_512)  # visible: <= 200
    assert_fails(
        capsys,
        checks.check_random_search,
        search_in_chunks_of_512,
        "n_trials=600",
        "distinct values of 'lr' in 600 trials",
        hidden=True,
    )
    assert_passes(capsys, checks.check_random_search, search_in_chunks_of_256, hidden=True)


# --- side effects are told also when the trials are wrong (issue 17, class 2) ---


def search_pops_the_space_and_stores_zero(objective, space, n_trials, rng):
    return [(params, 0.0) for params, _ in search_pops_the_space(objective, space, n_trials, rng)]


def test_random_search_wrong_and_mutating_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_random_search,
        search_pops_the_space_and_stores_zero,
        "changes its input in place (space)",
        "is not objective(params)",
    )
