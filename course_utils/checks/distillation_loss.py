"""Check for stage 06's ``distillation_loss(student_logits, teacher_logits, temperature)`` (Hinton et al. 2015), against ``course_utils.losses``
in float64: value, gradient, inputs untouched, the classic bugs named.

Coverage:

- value: against the float64 reference on random logits, logits of +-200, one two-class sample,
  C = 100 in float64, identical student and teacher (hidden);
- gradient: d<loss, u>/d student logits for a random upstream u against the float64 reference's;
- input untouched: student and teacher logits keep their values and ``._version`` counters;
- every argument: temperature 0.5, 1, 2, 3 and 4; logits of more than 512 rows;
- contract: a 0-dim tensor, meta tensors, no call of the course's version (hidden);
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

__all__ = ["check_distillation_loss"]


DISTILLATION_BANNED = ["course_utils.losses.distillation_loss"]


DISTILLATION_NO_T2 = (
    "the T**2 factor is missing: soft-target gradients scale as 1/T**2, so multiply the KL by "
    "T**2 (Hinton et al.)"
)


DISTILLATION_T_NOT_T2 = "multiplied by T; the factor is T**2"


DISTILLATION_REVERSED = (
    "KL in the wrong direction: F.kl_div(input, target) computes KL(target || input), so pass "
    "the student's log_softmax(s/T) as input and the teacher's softmax(t/T) as target"
)


DISTILLATION_MEAN = (
    "reduction='mean' divides by N*C; use reduction='batchmean' (sum over classes, mean over "
    "the N samples), the true KL"
)


DISTILLATION_SUM = "summed over the batch; use reduction='batchmean' (divide by the N samples)"


DISTILLATION_T_STUDENT_ONLY = (
    "temperature applied to the student only; divide both student and teacher logits by T"
)


DISTILLATION_T_TEACHER_ONLY = (
    "temperature applied to the teacher only; divide both student and teacher logits by T"
)


DISTILLATION_CROSS_ENTROPY = (
    "soft cross-entropy -sum p_t log q_s: it has the same gradient but differs from the KL by the "
    "teacher's entropy; subtract it, or use F.kl_div"
)


DISTILLATION_PROBS_AS_INPUT = (
    "the student's probabilities passed as F.kl_div's input; the input must be log-probabilities, "
    "F.log_softmax(student_logits / T, dim=1)"
)


DISTILLATION_SWAPPED = (
    "log_softmax and softmax swapped (NaN from the log of a negative number): F.kl_div's input is "
    "the student's log_softmax, its target the teacher's softmax (or log_softmax with "
    "log_target=True)"
)


DISTILLATION_UNSTABLE = (
    "log(softmax(x)) gives log(0) = -inf for very negative logits; use F.log_softmax"
)


def _kl_per_sample(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return (log_p.exp() * (log_p - log_q)).sum(1)


def _distillation_variants(s: torch.Tensor, t: torch.Tensor, temperature: float) -> Variants:
    s, t = s.detach().double(), t.detach().double()
    n, c = s.shape
    t2 = temperature**2
    ls, lt = F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1)
    kl = _kl_per_sample(lt, ls)
    return [
        (DISTILLATION_NO_T2, kl.mean()),
        (DISTILLATION_T_NOT_T2, temperature * kl.mean()),
        (DISTILLATION_REVERSED, t2 * _kl_per_sample(ls, lt).mean()),
        (DISTILLATION_MEAN, t2 * kl.sum() / (n * c)),
        (DISTILLATION_SUM, t2 * kl.sum()),
        (DISTILLATION_T_STUDENT_ONLY, t2 * _kl_per_sample(F.log_softmax(t, 1), ls).mean()),
        (DISTILLATION_T_TEACHER_ONLY, t2 * _kl_per_sample(lt, F.log_softmax(s, 1)).mean()),
        (DISTILLATION_CROSS_ENTROPY, -t2 * (lt.exp() * ls).sum(1).mean()),
        (DISTILLATION_PROBS_AS_INPUT, t2 * (lt.exp() * (lt - ls.exp())).sum(1).mean()),
        (DISTILLATION_SWAPPED, torch.tensor(float("nan"), dtype=torch.float64)),
    ]


def _distillation_case(
    report: Report,
    learner_fn: LearnerFn,
    s: torch.Tensor,
    t: torch.Tensor,
    temperature: float,
    *,
    nonfinite_hint: str = DISTILLATION_SWAPPED,
    fallback_hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    expected = ref.distillation_loss(s.double(), t.double(), temperature=temperature)
    given, given_t = s.clone().requires_grad_(), t.clone()
    kept = keep(student_logits=given, teacher_logits=given_t)
    got = learner_fn(given, given_t, temperature)
    expect_untouched(report, kept)
    if got is None:
        report.fail("returned None (a missing return statement?); expected the loss")
    variants = _distillation_variants(s, t, temperature)
    if nonfinite_hint != DISTILLATION_SWAPPED:
        variants = [v for v in variants if v[0] != DISTILLATION_SWAPPED]
    compare_named(
        report,
        got,
        expected,
        variants,
        what="loss",
        nonfinite_hint=nonfinite_hint,
        fallback_hint=fallback_hint,
        rtol=rtol,
        atol=atol,
    )
    _expect_differentiable(report, got)
    t64 = t.double()
    _expect_gradient(
        report,
        got,
        given,
        lambda s64: ref.distillation_loss(s64, t64, temperature=temperature),
        seed=s.numel(),
        rtol=rtol,
        atol=atol,
    )


def check_distillation_loss(learner_fn: LearnerFn, *, hidden: bool = False) -> CheckResult:
    """Check ``distillation_loss(student_logits, teacher_logits, temperature)``, the soft term.

    The answer must return ``T**2 * KL(softmax(teacher/T) || softmax(student/T))`` summed over
    classes and averaged over the batch (``F.kl_div(..., reduction='batchmean')``). Cases:
    random (6, 5) logits with T = 2, (4, 3) with T = 1, (10, 7) with T = 4; logits of +-200
    (finite values); meta tensors. Hidden: T = 0.5, a single two-class sample, float64 with
    C = 100, identical student and teacher (loss 0), and no call of
    course_utils.losses.distillation_loss.

    Every value case also compares the gradient with the float64 reference's (for a random
    upstream gradient) and checks that the inputs come back unchanged.
    """
    report = Report("distillation_loss")
    gen = _generator(1503)

    def logits(n: int, c: int, scale: float, dtype: torch.dtype = torch.float32):
        return scale * torch.randn(n, c, generator=gen, dtype=dtype)

    with report.case("random logits (6, 5), T=2"):
        _distillation_case(report, learner_fn, logits(6, 5, 2.0), logits(6, 5, 3.0), 2.0)
    if _not_implemented(report):
        return report.finish("")
    with report.case("random logits (4, 3), T=1"):
        _distillation_case(report, learner_fn, logits(4, 3, 2.0), logits(4, 3, 2.0), 1.0)
    with report.case("random logits (10, 7), T=4"):
        _distillation_case(report, learner_fn, logits(10, 7, 3.0), logits(10, 7, 5.0), 4.0)
    with report.case("logits of +-200, T=2, must give a finite loss"):
        s = torch.tensor([[200.0, -200.0, 0.0], [0.0, 200.0, -200.0]])
        t = torch.tensor([[-200.0, 200.0, 0.0], [0.0, 10.0, -5.0]])
        _distillation_case(
            report,
            learner_fn,
            s,
            t,
            2.0,
            nonfinite_hint=DISTILLATION_UNSTABLE,
            fallback_hint=DISTILLATION_UNSTABLE,
        )
    with report.case("more than 512 rows: logits (700, 5), T=3"):
        _distillation_case(report, learner_fn, logits(700, 5, 2.0), logits(700, 5, 3.0), 3.0)
    with report.case("meta tensors: student and teacher logits (4, 5)"):
        s, t = (torch.empty(4, 5, device="meta") for _ in range(2))
        _run_on_meta(report, returning(report, lambda: learner_fn(s, t, 2.0)), ())
    summary = "matches T**2 * KL(teacher || student) with batchmean for T=1, 2, 4, logits of "
    summary += "+-200 and meta tensors"
    if not hidden:
        return report.finish(summary)

    with report.case("hidden test: T=0.5, logits (5, 4)"):
        _distillation_case(report, learner_fn, logits(5, 4, 1.0), logits(5, 4, 1.0), 0.5)
    with report.case("hidden test: a single two-class sample, T=3"):
        _distillation_case(report, learner_fn, logits(1, 2, 2.0), logits(1, 2, 2.0), 3.0)
    with report.case("hidden test: float64 logits (3, 100), T=2"):
        s, t = logits(3, 100, 2.0, torch.float64), logits(3, 100, 4.0, torch.float64)
        _distillation_case(report, learner_fn, s, t, 2.0, rtol=1e-7, atol=1e-9)
    with report.case("hidden test: identical student and teacher must give 0"):
        s = logits(6, 5, 3.0)
        _distillation_case(report, learner_fn, s, s.clone(), 2.0)
    s, t = logits(4, 5, 1.0), logits(4, 5, 1.0)
    _reference_case(report, learner_fn, DISTILLATION_BANNED, lambda: learner_fn(s, t, 2.0))
    return report.finish(summary + ", plus the hidden edge cases")
