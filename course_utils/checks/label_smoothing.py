"""Check for stage 04's ``smoothed_cross_entropy(logits, targets, eps)`` (Szegedy et al. 2016), against
``course_utils.losses`` in float64: value, gradient, inputs untouched, the classic bugs named.

Coverage:

- value: the mean loss against the float64 reference on random logits, logits 200 apart, C = 2, one
  sample, C = 100 in float64, one class only (hidden); a wrong value is printed with enough digits
  to differ from the expected one;
- gradient: d<loss, u>/d logits for a random upstream u against the float64 reference's;
- input untouched: logits and targets keep their values and ``._version`` counters;
- every argument: eps = 0, 0.05, 0.1, 0.2, 0.3 and 1; logits of more than 512 rows;
- contract: a 0-dim tensor, meta tensors, no ``label_smoothing=`` keyword nor call of the course's
  version (hidden);
- hints: a variant is named only when no other variant gives the same value on that input.
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
    _expect_differentiable,
    _expect_gradient,
    _generator,
    _not_implemented,
    _reference_case,
    _run_on_meta,
)
from course_utils.checks._report import CheckResult, Report

__all__ = ["check_label_smoothing"]


SMOOTHING_BANNED = [
    "course_utils.losses.label_smoothing_cross_entropy",
    "course_utils.losses.smoothed_targets",
]


SMOOTHING_SOURCE_KEYWORDS = [
    ("label_smoothing", "F.cross_entropy(..., label_smoothing=...)"),
]


SMOOTHING_C_MINUS_1 = (
    "eps/(C-1) instead of eps/C: smoothing mass must be eps/C on every class, including the "
    "true one"
)


SMOOTHING_OTHERS_ONLY = (
    "eps spread over the other classes only; the target is (1 - eps) * onehot + eps/C on every "
    "class, so the true class gets 1 - eps + eps/C and each other class eps/C"
)


SMOOTHING_SKIPS_TRUE = (
    "the uniform part skips the true class; eps/C goes to every class, the true one included "
    "(true class 1 - eps + eps/C)"
)


SMOOTHING_NO_UNIFORM = (
    "only the (1 - eps) factor on the true class; add the uniform part, eps/C times the sum over "
    "all classes of -log p_c"
)


SMOOTHING_NONE = "no smoothing at all: this is plain cross-entropy; mix in eps/C on every class"


SMOOTHING_SOFTMAX_TWICE = (
    "softmax applied twice (probabilities passed where logits are expected); take log_softmax "
    "of the raw logits once"
)


SMOOTHING_NO_LOG = (
    "the log is missing: the loss is -sum_c q_c * log p_c, with log p = F.log_softmax(logits, 1)"
)


SMOOTHING_SUM = "summed over the batch; return the mean over the N samples"


SMOOTHING_MEAN_NC = (
    "averaged over the classes too (.mean() of the (N, C) product); sum over the classes, then "
    "average over the N samples"
)


SMOOTHING_PER_SAMPLE = "one loss per sample; return their mean (a single number)"


SMOOTHING_UNSTABLE = (
    "log(softmax(x)) gives log(0) = -inf for very negative logits; use F.log_softmax(logits, 1)"
)


def _per_sample_smoothed_ce(log_p: torch.Tensor, y: torch.Tensor, on: float, off: float):
    """-sum_c q_c log p_c with q = on at the true class and off elsewhere."""
    true_class = -log_p.gather(1, y.unsqueeze(1)).squeeze(1)
    others = -log_p.sum(1) - true_class
    return on * true_class + off * others


def _smoothing_variants(x: torch.Tensor, y: torch.Tensor, eps: float) -> Variants:
    x = x.detach().double()
    c = x.shape[1]
    log_p = F.log_softmax(x, 1)
    right = _per_sample_smoothed_ce(log_p, y, 1 - eps + eps / c, eps / c)
    spread = eps / (c - 1) if c > 1 else 0.0
    q = ref.smoothed_targets(y, c, eps, dtype=torch.float64)
    return [
        (SMOOTHING_C_MINUS_1, _per_sample_smoothed_ce(log_p, y, 1 - eps + spread, spread).mean()),
        (SMOOTHING_OTHERS_ONLY, _per_sample_smoothed_ce(log_p, y, 1 - eps, spread).mean()),
        (SMOOTHING_SKIPS_TRUE, _per_sample_smoothed_ce(log_p, y, 1 - eps, eps / c).mean()),
        (SMOOTHING_NO_UNIFORM, _per_sample_smoothed_ce(log_p, y, 1 - eps, 0.0).mean()),
        (SMOOTHING_NONE, _per_sample_smoothed_ce(log_p, y, 1.0, 0.0).mean()),
        (SMOOTHING_SOFTMAX_TWICE, ref.label_smoothing_cross_entropy(x.softmax(1), y, eps)),
        (SMOOTHING_NO_LOG, -(q * x.softmax(1)).sum(1).mean()),
        (SMOOTHING_SUM, right.sum()),
        (SMOOTHING_MEAN_NC, right.mean() / c),
        (SMOOTHING_PER_SAMPLE, right),
    ]


def _smoothing_case(
    report: Report,
    learner_fn: LearnerFn,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    fallback_hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    expected = ref.label_smoothing_cross_entropy(x.double(), y, eps)
    given, given_y = x.clone().requires_grad_(), y.clone()
    kept = keep(logits=given, targets=given_y)
    got = learner_fn(given, given_y, eps)
    expect_untouched(report, kept)
    if got is None:
        report.fail("returned None (a missing return statement?); expected the loss")
    compare_named(
        report,
        got,
        expected,
        _smoothing_variants(x, y, eps),
        what="loss",
        nonfinite_hint=SMOOTHING_UNSTABLE,
        fallback_hint=fallback_hint,
        rtol=rtol,
        atol=atol,
    )
    _expect_differentiable(report, got)
    _expect_gradient(
        report,
        got,
        given,
        lambda x64: ref.label_smoothing_cross_entropy(x64, y, eps),
        seed=x.numel(),
        rtol=rtol,
        atol=atol,
    )


def check_label_smoothing(learner_fn: LearnerFn, *, hidden: bool = False) -> CheckResult:
    """Check ``smoothed_cross_entropy(logits, targets, eps)``, the mean label-smoothed CE.

    The answer must return the mean over samples of the cross-entropy against the target
    ``(1 - eps) * onehot(y) + eps / C`` (eps/C on every class, the true one included), as
    ``F.cross_entropy(logits, targets, label_smoothing=eps)``. Cases: random (8, 5) logits with
    eps = 0.1 and (16, 10) with eps = 0.3; eps = 0 (plain cross-entropy); eps = 1 (uniform
    target); logits 200 apart (finite values); meta tensors. Hidden: C = 2, a single sample,
    float64 with C = 100, every sample of one class, and no ``label_smoothing=`` nor call of
    course_utils.losses.

    Every value case also compares the gradient with the float64 reference's (for a random
    upstream gradient) and checks that the inputs come back unchanged.
    """
    report = Report("label_smoothing")
    gen = _generator(1512)
    with report.case("random logits (8, 5), eps=0.1"):
        x = 2 * torch.randn(8, 5, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 5, (8,), generator=gen), 0.1)
    if _not_implemented(report):
        return report.finish("")
    with report.case("random logits (16, 10), eps=0.3"):
        x = 2 * torch.randn(16, 10, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 10, (16,), generator=gen), 0.3)
    with report.case("eps=0 must give plain cross-entropy, logits (6, 4)"):
        x = 2 * torch.randn(6, 4, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 4, (6,), generator=gen), 0.0)
    with report.case("eps=1 must give the cross-entropy to the uniform target, logits (6, 4)"):
        x = 2 * torch.randn(6, 4, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 4, (6,), generator=gen), 1.0)
    with report.case("logits 200 apart, eps=0.1, must give a finite loss"):
        x = torch.tensor([[100.0, -100.0, 0.0], [-100.0, 100.0, 50.0], [0.0, 0.0, -100.0]])
        y = torch.tensor([0, 2, 1])
        _smoothing_case(report, learner_fn, x, y, 0.1, fallback_hint=SMOOTHING_UNSTABLE)
    with report.case("more than 512 rows: logits (700, 6), eps=0.2"):
        x = 2 * torch.randn(700, 6, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 6, (700,), generator=gen), 0.2)
    with report.case("meta tensors: logits (4, 5), targets (4,)"):
        x = torch.empty(4, 5, device="meta")
        y = torch.empty(4, dtype=torch.long, device="meta")
        _run_on_meta(report, returning(report, lambda: learner_fn(x, y, 0.1)), ())
    summary = "matches F.cross_entropy(label_smoothing=eps) on random inputs, eps=0 and 1, "
    summary += "logits 200 apart and meta tensors"
    if not hidden:
        return report.finish(summary)

    with report.case("hidden test: two classes, eps=0.2"):
        x = 3 * torch.randn(12, 2, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.randint(0, 2, (12,), generator=gen), 0.2)
    with report.case("hidden test: a single sample, logits (1, 7), eps=0.1"):
        x = torch.randn(1, 7, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.tensor([3]), 0.1)
    with report.case("hidden test: float64 logits (5, 100), eps=0.05"):
        x = 3 * torch.randn(5, 100, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 100, (5,), generator=gen)
        _smoothing_case(report, learner_fn, x, y, 0.05, rtol=1e-7, atol=1e-9)
    with report.case("hidden test: every sample of class 0, eps=0.1"):
        x = 2 * torch.randn(9, 6, generator=gen)
        _smoothing_case(report, learner_fn, x, torch.zeros(9, dtype=torch.long), 0.1)
    x = torch.randn(4, 5, generator=gen)
    y = torch.randint(0, 5, (4,), generator=gen)
    _reference_case(
        report,
        learner_fn,
        SMOOTHING_BANNED,
        lambda: learner_fn(x, y, 0.1),
        source_keywords=SMOOTHING_SOURCE_KEYWORDS,
    )
    return report.finish(summary + ", plus the hidden edge cases")
