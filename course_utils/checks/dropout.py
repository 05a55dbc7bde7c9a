"""Check for stage 04's ``dropout(x, keep_prob, training)``, inverted dropout: kept fraction, scaling by 1/(1-p), eval mode as the
identity, gradient through the mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks._guards import (
    one_cpu_thread,
)
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


def _kept_fraction_tolerance(keep_prob: float, count: int) -> float:
    # 10 standard deviations of the binomial fraction, and never below 0.004.
    return max(10 * math.sqrt(keep_prob * (1 - keep_prob) / count), 0.004)


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
            x_before = x.clone()
            got = call(x, keep_prob, True, seed=int(keep_prob * 100))
            report.expect(
                torch.equal(x, x_before),
                "your function changed x in place; return a new tensor (x * mask / keep_prob)",
            )
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

    with report.case("training=False returns x unchanged"):
        x = uniform(300, 200)
        got = call(x, 0.8, False, seed=3)
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

    with report.case("gradient is mask / keep_prob"):
        x = uniform(200, 300).requires_grad_()
        got = call(x, 0.7, True, seed=17)
        report.expect(isinstance(got, torch.Tensor) and got.requires_grad, DETACHED_HINT)
        (grad,) = torch.autograd.grad(got.sum(), x)
        expected = (got.detach() != 0).to(x.dtype) / 0.7
        report.expect_close(grad, expected, what="gradient of x", rtol=1e-5, atol=1e-6)

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
