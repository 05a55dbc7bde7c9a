"""Check for stage 04's ``dropout(x, keep_prob, training=True)``, inverted dropout: kept fraction,
scaling by 1/keep_prob, eval mode as the identity, gradient through the mask.

Coverage:

- value: kept units exactly x / keep_prob, dropped ones 0, mean preserved, identity in eval mode and
  for keep_prob = 1 (int 1 too, hidden), float64 and float16 keep their dtype;
- gradient: d<y, u>/dx = u * mask / keep_prob for a random upstream u (float32 and float64);
- input untouched: x keeps its values and ``._version`` counter, in training and in eval mode;
- randomness: the kept fraction within the Binomial's bounds at a false-alarm rate of 1e-9; each unit
  kept independently (the per-sample counts spread like a Binomial's, not exactly k per sample);
  a fresh mask per element, per sample and per call; the mask follows torch's global RNG (the same
  ``torch.manual_seed`` gives the same mask, different seeds different masks);
- every argument: keep_prob 0.8, 0.6, 0.5, 0.3, 1 (and 0.05 hidden), training left at its default
  True and False; inputs of 10^6 elements (1000 rows);
- contract: shape and dtype of x, meta tensors (no CPU tensors created), no library dropout (hidden).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import torch

from course_utils.checks._differences import expect_close_at
from course_utils.checks._guards import (
    one_cpu_thread,
)
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._module_cases import (
    DETACHED_HINT,
    _expect_meta_tensor,
    _generator,
    _guard,
    _matches,
    _meta_run,
    _no_reference_case,
    _seeded_rng,
)
from course_utils.checks._report import CheckResult, Report, describe

__all__ = ["check_dropout"]

DROPOUT_BANNED = [
    "torch.nn.functional.dropout",
    "torch.dropout",
    "torch.nn.Dropout",
    "course_utils.layers.dropout",
    "course_utils.layers.Dropout",
]


FALSE_ALARM = 1e-9  # chance that a correct answer fails one statistical test
_Z = NormalDist().inv_cdf(1 - FALSE_ALARM / 2)  # two-sided: 6.1 standard deviations


def _kept_fraction_tolerance(keep_prob: float, count: int) -> float:
    # The Binomial fraction's bounds at the false-alarm rate, and never below 0.004.
    return max(_Z * math.sqrt(keep_prob * (1 - keep_prob) / count), 0.004)


def _dispersion_bounds(rows: int) -> tuple[float, float]:
    """Bounds on var(per-row kept count) / (n p (1 - p)) for ``rows`` independent Binomial rows:
    about 1 +- z * sqrt(2 / rows) (a chi-square over its degrees of freedom), widened by half."""
    spread = 1.5 * _Z * math.sqrt(2 / rows)
    return max(1 - spread, 0.0), 1 + spread


def _check_dropout_sample(
    report: Report, x: torch.Tensor, got: object, keep_prob: float
) -> torch.Tensor:
    """Statistical checks of one training-mode output; returns the boolean mask of kept units."""
    report.expect(isinstance(got, torch.Tensor), f"should return a tensor, got {describe(got)}")
    assert isinstance(got, torch.Tensor)
    report.expect(
        tuple(got.shape) == tuple(x.shape),
        f"output has shape {tuple(got.shape)}, expected {tuple(x.shape)}",
    )
    report.expect(
        got.dtype == x.dtype,
        f"output dtype is {got.dtype}, expected the input's "
        f"{x.dtype} (make the mask like x: torch.rand_like(x) or torch.empty_like(x))",
    )
    got = got.detach()
    kept = got != 0
    fraction = float(kept.double().mean())
    tolerance = _kept_fraction_tolerance(keep_prob, x.numel())
    if fraction == 1.0:
        if torch.allclose(got, x):
            report.fail("returned x unchanged with training=True: no unit was dropped")
        report.fail(f"no unit was dropped (expected a fraction {1 - keep_prob:.2f} of zeros)")
    confusable = abs(keep_prob - (1 - keep_prob)) > 2 * tolerance
    if confusable and abs(fraction - (1 - keep_prob)) < tolerance:
        report.fail(
            f"kept a fraction {fraction:.3f} of the units, expected ≈ keep_prob = {keep_prob}. Looks "
            f"like: keep_prob used as the drop probability (PyTorch's p is the DROP probability; "
            f"here a unit survives with probability keep_prob: mask = rand < keep_prob)"
        )
    report.expect(
        abs(fraction - keep_prob) <= tolerance,
        f"kept a fraction {fraction:.3f} of the units, expected {keep_prob} ± {tolerance:.3f}",
    )
    ratio = (got[kept] / x[kept]).double()
    inverse = 1 / keep_prob

    def all_near(value: float) -> bool:
        return bool(torch.allclose(ratio, torch.full_like(ratio, value), rtol=1e-4, atol=0))

    if not all_near(inverse):
        low, high = float(ratio.min()), float(ratio.max())
        message = (
            f"kept units are x times {low:.4g}..{high:.4g}, expected x / keep_prob = "
            f"x * {inverse:.4g}"
        )
        if all_near(1.0):
            message += (
                ". Looks like: missing 1/keep_prob scaling (non-inverted dropout); scale "
                "the kept units by 1/keep_prob so the expected output equals x"
            )
        elif all_near(1 / (1 - keep_prob)):
            message += ". Looks like: scaled by 1/(1 - keep_prob); divide by keep_prob"
        elif all_near(keep_prob):
            message += ". Looks like: multiplied by keep_prob; divide by it instead"
        report.fail(message)
    mean_in, mean_out = float(x.double().mean()), float(got.double().mean())
    report.expect(
        abs(mean_out - mean_in) <= 0.02 * abs(mean_in),
        f"the mean changed from {mean_in:.4f} to {mean_out:.4f}; inverted dropout preserves it",
    )
    return kept


@one_cpu_thread
def check_dropout(learner_fn: Callable[..., Any], *, hidden: bool = False) -> CheckResult:
    """Grade ``dropout(x, keep_prob, training)``: inverted dropout from a KEEP probability.

    On 10^6-element inputs: fraction kept ≈ keep_prob (tolerance 10 standard deviations), kept
    values exactly x / keep_prob, mean preserved; a fresh mask per element, per sample and per call;
    identity in eval mode and for keep_prob = 1; gradient = mask / keep_prob; dtype kept; meta
    tensors. Names: drop probability used as keep probability, missing 1/keep scaling, dropout
    active in eval, scaling at eval (non-inverted), one mask for every sample or every call.
    ``hidden=True`` adds keep_prob = 0.05, an int keep_prob, float16 input, and bans ``F.dropout``,
    ``torch.dropout``, ``nn.Dropout`` and the course's own version.
    """
    report = Report("dropout")
    gen = _generator(2014)

    def call(x: torch.Tensor, keep_prob: float, training: bool, seed: int) -> Any:
        with _seeded_rng(seed), _guard(hidden, DROPOUT_BANNED):
            return learner_fn(x, keep_prob, training)

    def uniform(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(shape, generator=gen, dtype=dtype) + 0.5  # no zeros: kept = nonzero

    for keep_prob in (0.8, 0.3):
        with report.case(f"training, keep_prob={keep_prob}, x of shape (1000, 1000)"):
            x = uniform(1000, 1000)
            kept = keep(x=x)
            got = call(x, keep_prob, True, seed=int(keep_prob * 100))
            expect_untouched(report, kept)
            _check_dropout_sample(report, x, got, keep_prob)

    with report.case("every sample gets its own mask, per element (x of shape (512, 256))"):
        x = torch.ones(512, 256)
        got = call(x, 0.5, True, seed=7)
        kept = _check_dropout_sample(report, x, got, 0.5)
        report.expect(
            not bool((kept == kept[0]).all()),
            "every row (sample) got the same mask; "
            "draw one value per element of x: torch.rand_like(x) < keep_prob",
        )
        report.expect(
            not bool((kept == kept[:, :1]).all()),
            "whole rows are kept or dropped; dropout decides for every element separately",
        )
        counts = kept.double().sum(1)
        ratio = float(counts.var() / (256 * 0.5 * 0.5))
        low, high = _dispersion_bounds(512)
        report.expect(
            low <= ratio <= high,
            f"the number of kept units per sample varies {ratio:.3g} times as much as independent "
            f"Bernoulli(keep_prob) draws would (expected {low:.2f}..{high:.2f}); "
            + (
                "every sample keeps (nearly) the same number of units, e.g. a random permutation "
                "of a fixed count; keep each unit independently: torch.rand_like(x) < keep_prob"
                if ratio < low
                else "the units of a sample are not dropped independently of each other"
            ),
        )

    with report.case("a new mask on every call"):
        x = torch.ones(200, 300)
        with _seeded_rng(11), _guard(hidden, DROPOUT_BANNED):
            first = learner_fn(x, 0.5, True)
            second = learner_fn(x, 0.5, True)
        report.expect(
            isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor),
            "should return a tensor",
        )
        same = float(((first != 0) == (second != 0)).double().mean())
        report.expect(
            same < 0.9,
            "two calls dropped the same units; draw a fresh mask every call "
            "(no torch.manual_seed and no cached mask inside dropout)",
        )

    with report.case("training left at its default (True) drops units"):
        x = uniform(400, 250)
        with _seeded_rng(37), _guard(hidden, DROPOUT_BANNED):
            got = learner_fn(x, 0.6)
        _check_dropout_sample(report, x, got, 0.6)

    with report.case("the mask follows torch's global RNG (torch.manual_seed)"):
        x = torch.ones(100, 100)
        first, again, other = (call(x, 0.5, True, seed=seed) for seed in (41, 41, 42))
        for got in (first, again, other):
            report.expect(
                isinstance(got, torch.Tensor), f"should return a tensor, got {describe(got)}"
            )
        same_seed = bool(torch.equal(first != 0, again != 0))
        other_seed = float(((first != 0) == (other != 0)).double().mean())
        report.expect(
            other_seed < 0.9,
            "different torch.manual_seed values gave the same mask: the mask ignores the global "
            "RNG (a fixed seed or a generator of your own inside dropout?); draw it with "
            "torch.rand_like(x), which follows torch.manual_seed",
        )
        report.expect(
            same_seed,
            "the same torch.manual_seed gave different masks: the mask comes from another random "
            "source (NumPy, Python's random, a generator of your own), so runs cannot be "
            "reproduced; draw it with torch.rand_like(x)",
        )

    with report.case("training=False returns x unchanged"):
        x = uniform(300, 200)
        kept = keep(x=x)
        got = call(x, 0.8, False, seed=3)
        expect_untouched(report, kept)
        hint = None
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(x.shape):
            if bool((got == 0).any()):
                hint = "dropout is still active in eval mode; with training=False return x"
            elif _matches(got, x.double() * 0.8):
                hint = (
                    "scaled by keep_prob at eval time: that is the paper's non-inverted "
                    "recipe; inverted dropout already divided by keep_prob during training, "
                    "so eval is the identity"
                )
            elif _matches(got, x.double() / 0.8):
                hint = "scaled by 1/keep_prob in eval mode; scale only while training"
        report.expect_close(got, x, hint=hint, rtol=1e-6, atol=0)

    with report.case("keep_prob=1 returns x unchanged while training"):
        x = uniform(40, 25)
        got = call(x, 1.0, True, seed=5)
        report.expect_close(got, x, rtol=1e-6, atol=0)

    with report.case("float64 input (4-D, (8, 4, 16, 16))"):
        x = uniform(8, 4, 16, 16, dtype=torch.float64)
        got = call(x, 0.6, True, seed=13)
        _check_dropout_sample(report, x, got, 0.6)

    for dtype in (torch.float32, torch.float64):
        name = str(dtype).replace("torch.", "")
        with report.case(f"gradient is upstream * mask / keep_prob ({name}, (600, 100))"):
            x = uniform(600, 100, dtype=dtype).requires_grad_()
            upstream = torch.randn(600, 100, generator=gen, dtype=dtype)
            got = call(x, 0.7, True, seed=17)
            report.expect(isinstance(got, torch.Tensor) and got.requires_grad, DETACHED_HINT)
            (grad,) = torch.autograd.grad(got, x, upstream)
            expected = upstream * (got.detach() != 0).to(dtype) / 0.7
            hint = None
            if _matches(grad, upstream * (got.detach() != 0).to(dtype)):
                hint = "the gradient misses the 1/keep_prob factor (a scaling under no_grad?)"
            expect_close_at(
                report, grad, expected, what="gradient of x", hint=hint, rtol=1e-5, atol=1e-6
            )

    with report.case("runs on the meta device"), _meta_run(report):
        x = torch.empty(4, 5, device="meta")
        got = call(x, 0.8, True, seed=19)
        _expect_meta_tensor(report, got, (4, 5))

    if hidden:
        with report.case("small keep_prob=0.05 (x of shape (1000, 1000))"):
            x = uniform(1000, 1000)
            got = call(x, 0.05, True, seed=23)
            _check_dropout_sample(report, x, got, 0.05)
        with report.case("keep_prob given as the int 1"):
            x = uniform(30, 30)
            got = call(x, 1, True, seed=29)
            report.expect_close(got, x, rtol=1e-6, atol=0)
        with report.case("float16 input keeps its dtype"):
            x = uniform(300, 300).half()
            got = call(x, 0.5, True, seed=31)
            report.expect(
                isinstance(got, torch.Tensor) and got.dtype == torch.float16,
                f"output is {describe(got)}, expected float16 like the input (make the "
                f"mask with torch.rand_like(x) or x.new_empty(...))",
            )
        _no_reference_case(report, learner_fn, DROPOUT_BANNED, "dropout")
    return report.finish(
        "keeps ≈ keep_prob of the units with a fresh per-element mask, scales them by 1/keep_prob, "
        "preserves the mean, is the identity in eval and for keep_prob = 1, runs on meta tensors"
    )
