"""Check for stage 04's ``flood(loss, b)`` (Ishida et al. 2020): ``|loss - b| + b``, value and the gradient's
sign flip below the flood level.

Coverage:

- value: above, below and at b = 0, far below b in float64 and just above b (hidden);
- gradient: d flood / d weights against the reference's (the loss's gradient above b, its negative
  below b), zero or unflipped gradients named;
- input untouched: the loss tensor handed in keeps its value and ``._version`` counter (a
  ``loss.sub_(b)`` inside flood would change what the caller logs), under trusted grading too (the loss
  crosses the channel as the output of an op, so the in-place op does not raise there);
- every argument: b = 0, 0.05, 0.2, 0.3, 1.5 with losses above and below;
- contract: a differentiable 0-dim tensor, meta tensors (no host reads such as ``if loss < b``), no
  call of the course's version (hidden);
- hints: a variant is named only when no other variant gives the same value on that input.
"""

from __future__ import annotations

import torch

from course_utils import losses as ref
from course_utils.checks._differences import compare_named, returning
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._loss_cases import (
    LearnerFn,
    _expect_differentiable,
    _generator,
    _not_implemented,
    _reference_case,
    _run_on_meta,
)
from course_utils.checks._report import CheckResult, Report

__all__ = ["check_flooding"]


FLOODING_BANNED = ["course_utils.losses.flooded"]


FLOODING_CLAMP = (
    "a clamp (torch.clamp(loss, min=b) or max(loss, b)): below b its gradient is zero, so "
    "training just stops; flooding is |loss - b| + b, whose gradient flips sign below b and "
    "pushes the loss back up"
)


FLOODING_ABS_MINUS_B = (
    "abs(loss) - b; the formula is |loss - b| + b (b inside the abs and added back)"
)


FLOODING_MISSING_PLUS_B = "|loss - b| without the + b that puts the loss back on its own scale"


FLOODING_IDENTITY = (
    "the loss came back unchanged below b; flooding turns it around: |loss - b| + b = 2b - loss"
)


FLOODING_ZERO_GRAD = (
    "zero gradient below b, like a clamp or a detached branch; below b the gradient of "
    "|loss - b| + b is minus the loss's gradient"
)


FLOODING_NOT_FLIPPED = (
    "the value is right but below b the gradient has the plain loss's sign; it must be flipped "
    "(gradient ascent below the flood level), as |loss - b| + b does"
)


def _make_loss(w: torch.Tensor, value: float) -> torch.Tensor:
    """A differentiable 0-dim loss of the given value (dtype of ``w``)."""
    squares = (w**2).mean()
    return squares * (value / float(squares.detach()))


def _flooding_case(
    report: Report,
    learner_fn: LearnerFn,
    w: torch.Tensor,
    value: float,
    b: float,
) -> None:
    w_ref = w.detach().clone().requires_grad_()
    expected = ref.flooded(_make_loss(w_ref, value), b)
    (expected_grad,) = torch.autograd.grad(expected, w_ref)
    (plain_grad,) = torch.autograd.grad(_make_loss(w_ref, value), w_ref)

    w_learner = w.detach().clone().requires_grad_()
    loss = _make_loss(w_learner, value)
    kept = keep(loss=loss)
    got = learner_fn(loss, b)
    expect_untouched(report, kept)
    if got is None:
        report.fail("returned None (a missing return statement?); expected the flooded loss")
    value_variants = [
        (FLOODING_CLAMP, max(value, b)),
        (FLOODING_ABS_MINUS_B, abs(value) - b),
        (FLOODING_MISSING_PLUS_B, abs(value - b)),
        (FLOODING_IDENTITY, value),
    ]
    variants = [(hint, torch.tensor(v, dtype=torch.float64)) for hint, v in value_variants]
    # (compare_named names a variant only if no other one gives the same value on this input)
    compare_named(report, got, expected, variants, what="flooded loss")
    _expect_differentiable(report, got)
    (grad,) = torch.autograd.grad(got, w_learner, allow_unused=True)
    grad = torch.zeros_like(w_learner) if grad is None else grad
    grad_variants = [(FLOODING_ZERO_GRAD, torch.zeros_like(plain_grad, dtype=torch.float64))]
    if value < b:
        grad_variants.append((FLOODING_NOT_FLIPPED, plain_grad.double()))
    compare_named(
        report,
        grad,
        expected_grad,
        grad_variants,
        what="gradient with respect to the weights",
        atol=1e-6,
    )


def check_flooding(learner_fn: LearnerFn, *, hidden: bool = False) -> CheckResult:
    """Check ``flood(loss, b)``: ``|loss - b| + b`` for a 0-dim minibatch loss and flood level b.

    Checks the value above and below b and the gradient: above b it equals the loss's gradient,
    below b its negative (not zero, as a clamp would give). Cases: loss 0.8 with b = 0.3, loss 0.05
    with b = 0.2, b = 0 (identity), a detached output, meta tensors. Hidden: loss far below b in
    float64, loss just above b, and no call of course_utils.losses.flooded.
    """
    report = Report("flooding")
    gen = _generator(2002)
    cases = [
        ("loss 0.8 above the flood level b=0.3", 0.8, 0.3, torch.float32),
        ("loss 0.05 below the flood level b=0.2", 0.05, 0.2, torch.float32),
        ("flood level b=0 leaves the loss 0.4 unchanged", 0.4, 0.0, torch.float32),
    ]
    for index, (description, value, b, dtype) in enumerate(cases):
        with report.case(description):
            w = torch.randn(5, generator=gen, dtype=dtype)
            _flooding_case(report, learner_fn, w, value, b)
        if index == 0 and _not_implemented(report):
            return report.finish("")
    with report.case("meta tensor loss of shape ()"):
        loss = torch.empty((), device="meta")
        _run_on_meta(report, returning(report, lambda: learner_fn(loss, 0.1)), ())
    summary = "value and gradient right above and below b, b=0, and meta tensors"
    if not hidden:
        return report.finish(summary)

    hidden_cases = [
        ("hidden test: loss 0.01 far below b=1.5, float64", 0.01, 1.5, torch.float64),
        ("hidden test: loss 0.21 just above b=0.2", 0.21, 0.2, torch.float32),
        ("hidden test: loss 2.5 with b=0.05", 2.5, 0.05, torch.float32),
    ]
    for description, value, b, dtype in hidden_cases:
        with report.case(description):
            w = torch.randn(5, generator=gen, dtype=dtype)
            _flooding_case(report, learner_fn, w, value, b)
    loss = torch.tensor(0.3)
    _reference_case(report, learner_fn, FLOODING_BANNED, lambda: learner_fn(loss, 0.1))
    return report.finish(summary + ", plus the hidden edge cases")
