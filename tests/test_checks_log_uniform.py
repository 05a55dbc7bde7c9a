"""Tests of ``check_log_uniform`` (course_utils/checks/log_uniform.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import tuning
from course_utils.checks import log_uniform as checks
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def log_uniform_base10(low, high, n, rng):
    return 10 ** rng.uniform(np.log10(low), np.log10(high), size=n)


def log_uniform_loop(low, high, n, rng):
    return [math.exp(rng.uniform(math.log(low), math.log(high))) for _ in range(n)]


def log_uniform_torch(low, high, n, rng):
    u = torch.from_numpy(rng.random(n))
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def log_uniform_linear(low, high, n, rng):
    return rng.uniform(low, high, n)


def log_uniform_mixed_bases(low, high, n, rng):
    return 10 ** rng.uniform(np.log(low), np.log(high), n)


def log_uniform_mixed_bases_other_way(low, high, n, rng):
    return np.exp(rng.uniform(np.log10(low), np.log10(high), n))


def log_uniform_exponent(low, high, n, rng):
    return rng.uniform(np.log(low), np.log(high), n)


def log_uniform_exponent10(low, high, n, rng):
    return rng.uniform(np.log10(low), np.log10(high), n)


def log_uniform_global_rng(low, high, n, rng):
    return np.exp(np.random.uniform(np.log(low), np.log(high), n))


def log_uniform_wrong_count(low, high, n, rng):
    return np.exp(rng.uniform(np.log(low), np.log(high), n + 1))


def log_uniform_scipy(low, high, n, rng):
    import scipy.stats

    return scipy.stats.loguniform(low, high).rvs(size=n, random_state=rng)


def log_uniform_calls_reference(low, high, n, rng):
    return tuning.log_uniform(low, high, n, rng)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [log_uniform_base10, log_uniform_loop, log_uniform_torch])
def test_log_uniform_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_log_uniform, answer, hidden)


def test_log_uniform_passes_the_reference_when_not_hidden(capsys):
    assert_passes(
        capsys, checks.check_log_uniform, lambda lo, hi, n, rng: tuning.log_uniform(lo, hi, n, rng)
    )


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (log_uniform_linear, "uniform in linear space"),
        (log_uniform_mixed_bases, "10 ** uniform(ln low, ln high)"),
        (log_uniform_mixed_bases_other_way, "exp(uniform(log10 low, log10 high))"),
        (log_uniform_exponent, "returned the exponent u ~ uniform(ln low, ln high)"),
        (log_uniform_exponent10, "returned the exponent u ~ uniform(log10 low, log10 high)"),
        (log_uniform_global_rng, "draw from the rng argument"),
        (log_uniform_wrong_count, "expected 20000 samples"),
    ],
)
def test_log_uniform_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_log_uniform, answer, "low=1e-05, high=0.1", fragment)


def test_log_uniform_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_log_uniform, not_implemented, "not implemented yet")


@pytest.mark.parametrize("answer", [log_uniform_scipy, log_uniform_calls_reference])
def test_log_uniform_hidden_catches_the_reference(capsys, answer):
    assert_fails(
        capsys, checks.check_log_uniform, answer, "does not call the reference", hidden=True
    )


def test_checks_are_deterministic(capsys):
    first = checks.check_log_uniform(log_uniform_linear).lines
    second = checks.check_log_uniform(log_uniform_linear).lines
    capsys.readouterr()
    assert first == second


# --- randomness: the draws must come from the generator given (issue 17, class 3) ---


def log_uniform_seeded_inside(low, high, n, rng):
    rng = np.random.default_rng(0)  # a fixed seed: every caller gets the same samples
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def log_uniform_global_seed(low, high, n, rng):
    np.random.seed(0)
    return np.exp(np.random.uniform(np.log(low), np.log(high), n))


def log_uniform_grid(low, high, n, rng):
    return np.exp(np.linspace(np.log(low), np.log(high), n))


def log_uniform_shuffled_grid(low, high, n, rng):
    return rng.permutation(np.exp(np.linspace(np.log(low), np.log(high), n)))


def log_uniform_reseeds_the_global_generator(low, high, n, rng):
    np.random.seed(1234)  # a side effect on the caller's global generator
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (log_uniform_seeded_inside, ["gave the same samples", "never drawn from"]),
        (log_uniform_global_seed, ["gave the same samples", "re-seeded inside (np.random.seed)"]),
        (log_uniform_grid, ["gave the same samples", "never drawn from"]),
        (log_uniform_shuffled_grid, ["the same values in another order", "a grid) shuffled"]),
        (log_uniform_reseeds_the_global_generator, ["changes NumPy's global random state"]),
    ],
)
def test_log_uniform_fails_draws_that_ignore_the_generator(capsys, answer, fragments):
    out = assert_fails(capsys, checks.check_log_uniform, answer, *fragments)
    assert "never drawn from" not in out or "np.random.seed" not in out


def log_uniform_child_generator(low, high, n, rng):
    child = np.random.default_rng(rng.integers(2**63))  # seeded from the rng: still the caller's
    return np.exp(child.uniform(np.log(low), np.log(high), n))


def log_uniform_float32_from_random(low, high, n, rng):
    # scipy.stats.loguniform(low, high).rvs(n) would do the same; the exercise is to write it
    u = rng.random(n, dtype=np.float64)
    return np.exp(np.log(low) + u * np.log(high / low)).astype(np.float32).astype(np.float64)


def log_uniform_inverse_cdf_descending(low, high, n, rng):
    u = 1.0 - rng.random(n)  # in (0, 1]: another valid way to the same distribution
    return high * (low / high) ** u


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer",
    [
        log_uniform_child_generator,
        log_uniform_float32_from_random,
        log_uniform_inverse_cdf_descending,
    ],
)
def test_log_uniform_passes_unusual_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_log_uniform, answer, hidden)


def test_log_uniform_ks_bound_is_the_fixed_false_alarm_rate():
    from course_utils.checks._randomness import KS_ALPHA, ks_critical

    # sqrt(ln(2 / alpha) / (2 n)): 1.36 / sqrt(n) at alpha = 0.05, the textbook value
    assert math.isclose(ks_critical(10_000, 0.05), 1.358 / 100, rel_tol=1e-3)
    assert ks_critical(20_000) < 0.016 and KS_ALPHA <= 1e-3


# --- side effects are told also when the samples are wrong (issue 17, class 2) ---


def log_uniform_linear_after_a_global_seed(low, high, n, rng):
    np.random.seed(0)  # touches the caller's global state
    return rng.uniform(low, high, n)


def test_log_uniform_wrong_and_touching_the_global_state_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_log_uniform,
        log_uniform_linear_after_a_global_seed,
        "changes NumPy's global random state",
        "uniform in linear space",
    )
