"""Check for stage 05's ``sample_log_uniform(low, high, n, rng) -> array (n,)``: log-uniform samples
drawn from the NumPy ``Generator`` ``rng``.

What the check verifies:

- value: log(samples) uniform on [ln low, ln high], a Kolmogorov-Smirnov test at a fixed false-alarm rate
  (``_randomness.KS_ALPHA``); all samples in [low, high]; when the test rejects, the sample is tested
  against each classic bug (linear sampling, the exponent returned, mixed log bases) and a bug is named
  only if its test accepts.
- randomness: the same seed gives the same samples; two different generators give different samples (a
  seed fixed inside, ``np.random.seed``, a grid, a shuffled grid fail, the cause named from the evidence:
  the rng drawn from or not, the global state changed or not); NumPy's global random state untouched
  (told also when the samples are wrong).
- every argument: bounds below 1, across 1 and above 1, n = 20,000 and 5,000 (hidden: n = 1).
- contract: an array-like of shape (n,); hidden: no scipy.stats.loguniform or course reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from course_utils.checks._library_calls import _reference_case
from course_utils.checks._randomness import (
    GLOBAL_STATE_HINT,
    KS_ALPHA,
    DrawAudit,
    ignores_generator_hint,
    ks_critical,
)
from course_utils.checks._report import CheckResult, Report, describe
from course_utils.checks._values import _ks_uniform

__all__ = ["check_log_uniform"]


def _as_samples(report: Report, value: object, n: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        report.fail(f"should return {n} numbers (an array), got {describe(value)}")
    if array.shape != (n,):
        report.fail(f"expected {n} samples in an array of shape ({n},), got shape {array.shape}")
    return array


def _summarise(samples: np.ndarray) -> str:
    low, mid, high = np.quantile(samples, [0.0, 0.5, 1.0])
    return f"{samples.size} samples from {low:.3g} to {high:.3g} (median {mid:.3g})"


def _log_uniform_hypotheses(low: float, high: float) -> dict[str, Callable[[np.ndarray], Any]]:
    """Maps each explanation of a sample to the transform that makes it U(0, 1) if it holds."""
    ln_lo, ln_hi, lg_lo, lg_hi = math.log(low), math.log(high), math.log10(low), math.log10(high)
    return {
        "correct": lambda s: (np.log(s) - ln_lo) / (ln_hi - ln_lo),
        "uniform in linear space (rng.uniform(low, high)): most samples land in the top decade; "
        "sample the exponent uniformly, exp(uniform(ln low, ln high))": lambda s: (
            (s - low) / (high - low)
        ),
        "returned the exponent u ~ uniform(ln low, ln high); return exp(u)": lambda s: (
            (s - ln_lo) / (ln_hi - ln_lo)
        ),
        "returned the exponent u ~ uniform(log10 low, log10 high); return 10 ** u": lambda s: (
            (s - lg_lo) / (lg_hi - lg_lo)
        ),
        "10 ** uniform(ln low, ln high): natural-log bounds with base 10; use np.exp, or log10 "
        "bounds with 10 **": lambda s: (np.log10(s) - ln_lo) / (ln_hi - ln_lo),
        "exp(uniform(log10 low, log10 high)): log10 bounds with base e; use np.log bounds, or "
        "10 ** with log10 bounds": lambda s: (np.log(s) - lg_lo) / (lg_hi - lg_lo),
    }


def _log_uniform_case(
    report: Report, learner_fn: Callable[..., Any], low: float, high: float, n: int, seed: int
) -> None:
    first = DrawAudit(lambda rng: learner_fn(low, high, n, rng), seed)
    if first.touched_global:  # told whether or not the samples are right
        report.note(GLOBAL_STATE_HINT)
    samples = _as_samples(report, first.value, n)
    again = _as_samples(report, learner_fn(low, high, n, np.random.default_rng(seed)), n)
    if not np.array_equal(samples, again, equal_nan=True):
        report.fail(
            "two calls with the same seeded rng gave different samples: draw from the rng argument "
            "(rng.uniform(...)), not np.random or random"
        )
    other = DrawAudit(lambda rng: learner_fn(low, high, n, rng), seed + 1000)
    if other.touched_global:
        report.note(GLOBAL_STATE_HINT)
    other_samples = _as_samples(report, other.value, n)
    if np.array_equal(np.sort(samples), np.sort(other_samples), equal_nan=True):
        reordered = not np.array_equal(samples, other_samples, equal_nan=True)
        what = "the same values in another order" if reordered else "the same samples"
        report.fail(
            f"two different generators (seeds {seed} and {seed + 1000}) gave {what}. Looks like: "
            + ignores_generator_hint(first, other, reordered)
        )
    in_range = bool(np.all((samples >= low * (1 - 1e-9)) & (samples <= high * (1 + 1e-9))))
    if n < 100:
        if not in_range:
            report.fail(f"samples must lie in [{low:g}, {high:g}], got {_summarise(samples)}")
        return
    with np.errstate(all="ignore"):
        distances = {
            name: _ks_uniform(np.asarray(transform(samples), dtype=np.float64))
            for name, transform in _log_uniform_hypotheses(low, high).items()
        }
    critical = ks_critical(n)
    if in_range and distances["correct"] <= critical:
        return
    likeliest = min(distances, key=distances.__getitem__)
    message = (
        ("" if in_range else f"samples must lie in [{low:g}, {high:g}]; ")
        + f"got {_summarise(samples)}; log(samples) should be uniform on [ln low, ln high] "
        f"(Kolmogorov-Smirnov distance {distances['correct']:.4f}, above {critical:.4f}, the "
        f"bound a correct sampler exceeds with probability {KS_ALPHA:g})"
    )
    if likeliest != "correct" and distances[likeliest] <= critical:
        message += f". Looks like: {likeliest}"
    report.fail(message)


def check_log_uniform(
    learner_fn: Callable[[float, float, int, np.random.Generator], Any], *, hidden: bool = False
) -> CheckResult:
    """Check ``sample_log_uniform(low, high, n, rng) -> array of shape (n,)``.

    Expected: samples whose natural log is uniform on [ln low, ln high], i.e. exp(rng.uniform(ln
    low, ln high, n)) (or 10 ** rng.uniform(log10 low, log10 high, n)), drawn from the NumPy
    Generator ``rng`` so that the same seed gives the same samples. A list, array or tensor is
    accepted. Tried with 20,000 samples on [1e-5, 1e-1] and [3e-4, 0.7] and 5,000 on [2, 5e3]
    (Kolmogorov-Smirnov test of the logs), each also with a second, different generator. Hidden:
    [0.5, 2], [1, 1e4], n = 1; fails answers using scipy.stats.loguniform.
    """
    report = Report("log_uniform")
    cases = [(1e-5, 1e-1, 20000, 0), (3e-4, 0.7, 20000, 1), (2.0, 5e3, 5000, 5)]
    if hidden:
        cases += [(0.5, 2.0, 20000, 2), (1.0, 1e4, 20000, 3), (1e-3, 1e-1, 1, 4)]
    for low, high, n, seed in cases:
        with report.case(f"low={low:g}, high={high:g}, n={n}"):
            _log_uniform_case(report, learner_fn, low, high, n, seed)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            ["scipy.stats.loguniform", "scipy.stats.reciprocal", "course_utils.tuning.log_uniform"],
            lambda: learner_fn(1e-4, 1e-1, 10, np.random.default_rng(0)),
        )
    return report.finish("log of the samples is uniform, in range, reproducible from the rng")
