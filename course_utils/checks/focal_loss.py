"""Check for stage 03's ``focal_loss(logits, targets, alpha=0.25, gamma=2.0)`` (Lin et al. 2017), against
``course_utils.losses`` in float64: value, gradient, inputs untouched, the classic bugs named.

Coverage:

- value: per-element loss against the float64 reference on random logits, gamma = 0, logits of
  +-30, alpha = 0 and 1 in float64, all-negative and all-positive targets (hidden); a wrong value
  names the index and size of the largest error;
- gradient: d<loss, u>/d logits for a random upstream u against the float64 reference's, in every
  value case (a factor under no_grad or a straight-through loss fails);
- input untouched: logits and targets keep their values and ``._version`` counters;
- every argument: alpha and gamma left at their defaults (0.25, 2.0) and (0.75, 1.5), (0.25, 0),
  (0.4, 1), (0.25, 0.5), alpha 0 and 1; logits of more than 512 rows;
- contract: the logits' shape (reduction 'none'), meta tensors (no CPU tensors, no host reads), no
  call of torchvision's or the course's focal loss (hidden);
- hints: a variant is named only when no other variant gives the same values on that input (on
  all-negative targets "alpha_t swapped" and "alpha everywhere" look alike: neither is named).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils import losses as ref
from course_utils.checks._differences import compare_named, returning
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._loss_cases import (
    LearnerFn,
    Variants,
    _as_cpu64,
    _expect_differentiable,
    _expect_gradient,
    _generator,
    _matching_hint,
    _not_implemented,
    _reference_case,
    _run_on_meta,
)
from course_utils.checks._report import CheckResult, Report

__all__ = ["check_focal_loss"]


FOCAL_BANNED = [
    "torchvision.ops.sigmoid_focal_loss",
    "torchvision.ops.focal_loss.sigmoid_focal_loss",
    "course_utils.losses.sigmoid_focal_loss",
    "course_utils.losses.softmax_focal_loss",
]


FOCAL_ALPHA_MISSING = (
    "alpha_t is missing: weight every element by alpha_t = alpha for positives (target 1) and "
    "1 - alpha for negatives (target 0)"
)


FOCAL_ALPHA_SWAPPED = (
    "alpha_t is swapped: positives (target 1) get alpha and negatives get 1 - alpha"
)


FOCAL_ALPHA_EVERYWHERE = (
    "alpha multiplies every element; use alpha_t = alpha for positives and 1 - alpha for negatives"
)


FOCAL_ALPHA_POSITIVES_ONLY = (
    "alpha is applied to the positives only; negatives must be weighted by 1 - alpha, "
    "alpha_t = alpha * targets + (1 - alpha) * (1 - targets)"
)


FOCAL_P_T_GAMMA = (
    "modulating factor p_t**gamma; it must be (1 - p_t)**gamma, which shrinks the loss of easy, "
    "well-classified elements"
)


FOCAL_ONE_MINUS_P = (
    "modulating factor (1 - p)**gamma for every element; use (1 - p_t)**gamma, where p_t = p for "
    "positives and 1 - p for negatives"
)


FOCAL_BCE_MEAN = (
    "the BCE term is already averaged: F.binary_cross_entropy_with_logits defaults to "
    "reduction='mean'; pass reduction='none' to keep one value per element"
)


FOCAL_SOFTMAX = (
    "probabilities from a softmax; this focal loss is one binary problem per logit: "
    "p = torch.sigmoid(logits)"
)


FOCAL_REDUCED = (
    "the loss was reduced to one number; return the per-element loss (reduction='none'), "
    "with the logits' shape"
)


FOCAL_UNSTABLE = (
    "log(sigmoid(x)) and log(1 - sigmoid(x)) overflow for large |x| (or clamped probabilities "
    "cap the loss); compute the log term as "
    "F.binary_cross_entropy_with_logits(logits, targets, reduction='none')"
)


def _focal_variants(x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float) -> Variants:
    x, y = x.detach().double(), y.detach().double()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    modulated = ce * (1 - p_t) ** gamma
    right = alpha_t * modulated
    q = torch.softmax(x, dim=-1)
    q_t = q * y + (1 - q) * (1 - y)
    return [
        (FOCAL_ALPHA_MISSING, modulated),
        (FOCAL_ALPHA_SWAPPED, ((1 - alpha) * y + alpha * (1 - y)) * modulated),
        (FOCAL_ALPHA_EVERYWHERE, alpha * modulated),
        (FOCAL_ALPHA_POSITIVES_ONLY, alpha * y * modulated),
        (FOCAL_ALPHA_POSITIVES_ONLY, (alpha * y + (1 - y)) * modulated),
        (FOCAL_P_T_GAMMA, alpha_t * p_t**gamma * ce),
        (FOCAL_ONE_MINUS_P, alpha_t * (1 - p) ** gamma * ce),
        (FOCAL_BCE_MEAN, alpha_t * (1 - p_t) ** gamma * ce.mean()),
        (FOCAL_SOFTMAX, -alpha_t * (1 - q_t) ** gamma * torch.log(q_t)),
        (FOCAL_REDUCED, right.mean()),
        (FOCAL_REDUCED, right.sum()),
    ]


def _focal_case(
    report: Report,
    learner_fn: LearnerFn,
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    gamma: float,
    *,
    fallback_hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    defaults: bool = False,
) -> None:
    expected = ref.sigmoid_focal_loss(x.double(), y.double(), alpha, gamma)
    given, given_y = x.clone().requires_grad_(), y.clone()
    kept = keep(logits=given, targets=given_y)
    got = learner_fn(given, given_y) if defaults else learner_fn(given, given_y, alpha, gamma)
    expect_untouched(report, kept)
    if got is None:
        report.fail("returned None (a missing return statement?); expected the loss")
    variants = list(_focal_variants(x, y, alpha, gamma))
    got64 = _as_cpu64(got)
    unmatched = _matching_hint(got, variants, rtol, atol) is None
    if unmatched and got64 is not None and got64.numel() > 1 and bool(got64.std() > 0):
        # A softmax-based answer does not change when every logit moves by the same amount.
        try:
            shifted = learner_fn(x + 2.0, y.clone(), alpha, gamma)
            if torch.allclose(_as_cpu64(shifted), got64, rtol=rtol, atol=atol):
                variants.insert(0, (FOCAL_SOFTMAX, got64))
        except Exception:  # only a diagnosis; the comparison below reports the failure
            pass
    compare_named(
        report,
        got,
        expected,
        variants,
        nonfinite_hint=FOCAL_UNSTABLE,
        fallback_hint=fallback_hint,
        rtol=rtol,
        atol=atol,
    )
    _expect_differentiable(report, got)
    y64 = y.double()
    _expect_gradient(
        report,
        got,
        given,
        lambda x64: ref.sigmoid_focal_loss(x64, y64, alpha, gamma),
        seed=x.numel(),
        rtol=rtol,
        atol=atol,
    )


def _binary_targets(shape: tuple[int, ...], rate: float, gen: torch.Generator) -> torch.Tensor:
    targets = (torch.rand(shape, generator=gen) < rate).float()
    flat = targets.view(-1)
    flat[0], flat[-1] = 1.0, 0.0  # both classes present
    return targets


def check_focal_loss(learner_fn: LearnerFn, *, hidden: bool = False) -> CheckResult:
    """Check ``focal_loss(logits, targets, alpha=0.25, gamma=2.0)``, the per-element binary loss.

    The answer must return ``-alpha_t * (1 - p_t)**gamma * log(p_t)`` with the logits' shape
    (reduction 'none'), as ``torchvision.ops.sigmoid_focal_loss``. Cases: random logits of two
    shapes with (alpha, gamma) = (0.25, 2) and (0.75, 1.5); gamma = 0 (alpha-weighted BCE);
    logits of +-30 (finite values); meta tensors. The exercise takes alpha in [0, 1]; torchvision's
    alpha = -1 ("no weighting") is not part of it and is not tested. Hidden: alpha = 0 and 1 in
    float64, all-negative and all-positive targets, gamma = 0.5, and no call of
    torchvision.ops.sigmoid_focal_loss or course_utils.losses.

    Every value case also compares the gradient with the float64 reference's (for a random
    upstream gradient) and checks that the inputs come back unchanged.
    """
    report = Report("focal_loss")
    gen = _generator(1708)
    with report.case("random logits of shape (6, 5), alpha=0.25, gamma=2"):
        x = 3 * torch.randn(6, 5, generator=gen)
        _focal_case(report, learner_fn, x, _binary_targets((6, 5), 0.3, gen), 0.25, 2.0)
    if _not_implemented(report):
        return report.finish("")
    with report.case("random logits of shape (10,), alpha=0.75, gamma=1.5"):
        x = 3 * torch.randn(10, generator=gen)
        _focal_case(report, learner_fn, x, _binary_targets((10,), 0.5, gen), 0.75, 1.5)
    with report.case("gamma=0 must give alpha-weighted BCE, logits of shape (2, 3, 4)"):
        x = 2 * torch.randn(2, 3, 4, generator=gen)
        _focal_case(report, learner_fn, x, _binary_targets((2, 3, 4), 0.4, gen), 0.25, 0.0)
    with report.case("large logits (+-30, +-12) must give finite values"):
        x = torch.tensor([30.0, -30.0, 30.0, -30.0, 12.0, -12.0, 0.0, 25.0])
        y = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
        _focal_case(report, learner_fn, x, y, 0.25, 2.0, fallback_hint=FOCAL_UNSTABLE)
    with report.case("alpha and gamma left at their defaults (0.25, 2.0)"):
        x = 3 * torch.randn(5, 4, generator=gen)
        y = _binary_targets((5, 4), 0.3, gen)
        _focal_case(report, learner_fn, x, y, 0.25, 2.0, defaults=True)
    with report.case("more than 512 rows: logits (700, 3), alpha=0.4, gamma=1"):
        x = 3 * torch.randn(700, 3, generator=gen)
        _focal_case(report, learner_fn, x, _binary_targets((700, 3), 0.2, gen), 0.4, 1.0)
    with report.case("meta tensors of shape (4, 3)"):
        x, y = (torch.empty(4, 3, device="meta") for _ in range(2))
        _run_on_meta(report, returning(report, lambda: learner_fn(x, y, 0.25, 2.0)), (4, 3))
    summary = "matches the reference on random inputs, gamma=0, logits of +-30 and meta tensors"
    if not hidden:
        return report.finish(summary)

    with report.case("hidden test: alpha=0 and alpha=1 in float64"):
        x = 4 * torch.randn(5, 4, generator=gen, dtype=torch.float64)
        y = _binary_targets((5, 4), 0.5, gen).double()
        for alpha in (0.0, 1.0):
            _focal_case(report, learner_fn, x, y, alpha, 2.0, rtol=1e-7, atol=1e-9)
    with report.case("hidden test: all-negative and all-positive targets, shape (16,)"):
        x = 3 * torch.randn(16, generator=gen)
        for value in (0.0, 1.0):
            _focal_case(report, learner_fn, x, torch.full((16,), value), 0.25, 2.0)
    with report.case("hidden test: gamma=0.5"):
        x = 3 * torch.randn(7, 3, generator=gen)
        _focal_case(report, learner_fn, x, _binary_targets((7, 3), 0.3, gen), 0.25, 0.5)
    x = torch.randn(4, 3, generator=gen)
    y = _binary_targets((4, 3), 0.5, gen)
    _reference_case(report, learner_fn, FOCAL_BANNED, lambda: learner_fn(x, y, 0.25, 2.0))
    return report.finish(summary + ", plus the hidden edge cases")
