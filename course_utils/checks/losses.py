"""Checks for the loss exercises: focal loss, label smoothing, flooding and distillation.

Every check has the shape ``check_<exercise>(learner_fn, *, hidden=False) -> CheckResult``. It runs
the learner's function on fresh seeded random inputs and on edge cases, compares with the reference
in ``course_utils.losses`` (computed in float64), and prints one ``PASS`` line or one ``FAIL`` line
per failing case. When a wrong answer matches a known buggy variant computed on the same input, the
``FAIL`` line names that bug. Every check also runs the function on ``meta`` tensors, which catches
tensors created on the wrong device and host reads such as ``.item()``. ``hidden=True`` adds edge
cases and fails answers that call the reference (our ``course_utils.losses`` or the library
function the exercise replaces).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from course_utils import losses as ref
from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    ReferenceCalled,
    banned_names_in_source,
    keywords_in_source,
    tripwires,
)
from course_utils.checks._report import CheckResult, Report

__all__ = [
    "check_distillation_loss",
    "check_flooding",
    "check_focal_loss",
    "check_label_smoothing",
]

LearnerFn = Callable[..., Any]
Variants = Sequence[tuple[str, torch.Tensor]]

HOST_SYNC_HINT = (
    "your function reads tensor values on the host (.item(), float(t), .numpy(), .tolist() or "
    "`if t > b:`), which breaks on the meta device and stalls a GPU; keep it in tensor ops "
    "(torch.where, .abs(), torch.clamp, ...)"
)
DETACHED_HINT = (
    "the output is not connected to the input by autograd (a Python number, .item(), .detach(), "
    "NumPy or torch.tensor(...) of a computed value), so no gradient reaches the model; build it "
    "from the input with tensor ops"
)


# --- shared machinery ----------------------------------------------------------------------------


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _as_cpu64(value: object) -> torch.Tensor | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if not isinstance(value, torch.Tensor) or value.device.type == "meta":
        return None
    return value.detach().to("cpu", torch.float64)


def _matching_hint(got: object, variants: Variants, rtol: float, atol: float) -> str | None:
    """The hint of the first buggy variant that ``got`` equals (NaNs count as equal)."""
    got64 = _as_cpu64(got)
    if got64 is None:
        return None
    for hint, value in variants:
        if got64.shape != value.shape:
            continue
        if torch.allclose(got64, value, rtol=rtol, atol=atol, equal_nan=True):
            return hint
    return None


def _compare(
    report: Report,
    got: object,
    expected: torch.Tensor,
    variants: Variants = (),
    *,
    what: str = "output",
    nonfinite_hint: str | None = None,
    fallback_hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail the current case unless ``got`` matches ``expected``; name the bug it looks like."""
    expected = expected.detach().to("cpu", torch.float64)
    got64 = _as_cpu64(got)
    same_shape = got64 is not None and got64.shape == expected.shape
    if same_shape and torch.allclose(got64, expected, rtol=rtol, atol=atol):
        return
    hint = _matching_hint(got, variants, rtol, atol)
    blew_up = got64 is not None and not got64.isfinite().all() and expected.isfinite().all()
    if hint is None and blew_up:
        hint = nonfinite_hint
    hint = hint or fallback_hint
    if got64 is not None and got64.shape != expected.shape:
        message = f"{what} has shape {tuple(got64.shape)}, expected {tuple(expected.shape)}"
        report.fail(message + (f". Looks like: {hint}" if hint else ""))
    report.expect_close(got, expected, what=what, hint=hint, rtol=rtol, atol=atol)


def _expect_differentiable(report: Report, got: object) -> None:
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        report.fail(f"the values are right but {DETACHED_HINT}")


INPLACE_HINT = (
    "changes its input in place ({names}): the caller's tensors must come back as they were "
    "(write x = x * 2, not x *= 2, x.mul_(2) or x[mask] = ...; clone() first if you must)"
)


def _expect_inputs_unchanged(
    report: Report, inputs: dict[str, tuple[object, torch.Tensor]]
) -> None:
    """Fail if any tensor handed to the learner (name: (given, copy kept aside)) was changed."""
    changed = [
        name
        for name, (given, kept) in inputs.items()
        if isinstance(given, torch.Tensor)
        and given.device.type != "meta"
        and not torch.equal(given.detach(), kept)
    ]
    if changed:
        report.fail(INPLACE_HINT.format(names=", ".join(changed)))


GRADIENT_HINT = (
    "the values are right but the gradient is not: part of the loss (a weight, a normaliser, a "
    "target) is computed under torch.no_grad() or from a .detach()ed tensor, so autograd misses "
    "how it depends on the input; keep every term that depends on the input in the graph"
)


def _expect_gradient(
    report: Report,
    got: torch.Tensor,
    given: torch.Tensor,
    reference: Callable[[torch.Tensor], torch.Tensor],
    *,
    seed: int,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail unless d<got, u>/d``given`` equals the float64 ``reference``'s, for a random upstream
    gradient u (a vector-Jacobian product, as ``loss.backward()`` computes in training).

    ``given`` is the tensor handed to the learner; the tolerances are the value's, ten times looser.
    """
    upstream = torch.randn(tuple(got.shape), generator=_generator(seed), dtype=torch.float64)
    (grad,) = torch.autograd.grad(got, given, upstream.to(got.dtype), allow_unused=True)
    x64 = given.detach().to("cpu", torch.float64).requires_grad_()
    (expected,) = torch.autograd.grad(reference(x64), x64, upstream)
    got_grad = (
        torch.zeros_like(expected) if grad is None else grad.detach().to("cpu", torch.float64)
    )
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    if not torch.allclose(got_grad, expected, rtol=10 * rtol, atol=10 * atol * scale):
        worst = float((got_grad - expected).abs().max())
        report.fail(f"{GRADIENT_HINT} (largest difference in the gradient: {worst:.3g})")


def _run_on_meta(
    report: Report, call: Callable[[], object], expected_shape: tuple[int, ...]
) -> None:
    """Run ``call`` (the learner on meta tensors); fail with the device or host-read hint."""
    try:
        out = call()
    except NotImplementedError as error:
        if "meta" in str(error).lower():
            return  # a torch op without a meta kernel: not the learner's fault, nothing to check
        raise
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        said = f" (it raised {type(error).__name__}: {message})"
        lowered = message.lower()
        if any(key in lowered for key in ("item()", "ambiguous", "numpy", "data-dependent")):
            report.fail(HOST_SYNC_HINT + said)
        if "meta" in lowered or "same device" in lowered:
            report.fail(WRONG_DEVICE_HINT + said)
        raise
    if not isinstance(out, torch.Tensor):
        report.fail(
            f"on meta tensors it returned {type(out).__name__}, expected a tensor. {DETACHED_HINT}"
        )
    if out.device.type != "meta":
        report.fail(f"meta inputs gave a {out.device.type} tensor back: {WRONG_DEVICE_HINT}")
    report.expect(
        tuple(out.shape) == expected_shape,
        f"output on meta tensors has shape {tuple(out.shape)}, expected {expected_shape}",
    )


def _not_implemented(report: Report) -> bool:
    return bool(report.failures) and "not implemented yet" in report.failures[-1]


def _reference_case(
    report: Report,
    learner_fn: LearnerFn,
    banned: list[str],
    call: Callable[[], object],
    *,
    source_keywords: Sequence[tuple[str, str]] = (),
) -> None:
    """Fail if the answer calls a banned function, found in its syntax tree or at run time.

    ``source_keywords`` are extra ``(keyword, name)`` pairs: a call in the source passing that
    keyword argument counts as calling ``name``. Library
    functions are armed with tripwires only if their module is already imported: importing
    torchvision just to guard it would take seconds, and an import inside the answer shows in its
    source.
    """
    with report.case("hidden test: the answer implements the loss itself"):
        found = banned_names_in_source(learner_fn, banned)
        passed = keywords_in_source(learner_fn, [keyword for keyword, _ in source_keywords])
        found += [name for keyword, name in source_keywords if keyword in passed]
        if found:
            names = ", ".join(dict.fromkeys(found))
            report.fail(f"your answer calls {names}; the exercise is to write this loss yourself")
        armed = [name for name in banned if name.rsplit(".", 1)[0] in sys.modules]
        with tripwires(armed):
            try:
                call()
            except ReferenceCalled as error:
                report.fail(str(error))
            except Exception:  # other errors are reported by the value cases
                pass


# --- focal loss ----------------------------------------------------------------------------------

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
) -> None:
    expected = ref.sigmoid_focal_loss(x.double(), y.double(), alpha, gamma)
    given, given_y = x.clone().requires_grad_(), y.clone()
    got = learner_fn(given, given_y, alpha, gamma)
    _expect_inputs_unchanged(report, {"logits": (given, x), "targets": (given_y, y)})
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
    _compare(
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
    with report.case("meta tensors of shape (4, 3)"):
        x, y = (torch.empty(4, 3, device="meta") for _ in range(2))
        _run_on_meta(report, lambda: learner_fn(x, y, 0.25, 2.0), (4, 3))
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


# --- label smoothing -----------------------------------------------------------------------------

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
    got = learner_fn(given, given_y, eps)
    _expect_inputs_unchanged(report, {"logits": (given, x), "targets": (given_y, y)})
    _compare(
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
    with report.case("meta tensors: logits (4, 5), targets (4,)"):
        x = torch.empty(4, 5, device="meta")
        y = torch.empty(4, dtype=torch.long, device="meta")
        _run_on_meta(report, lambda: learner_fn(x, y, 0.1), ())
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


# --- flooding ------------------------------------------------------------------------------------

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
    got = learner_fn(_make_loss(w_learner, value), b)
    value_variants = [
        (FLOODING_CLAMP, max(value, b)),
        (FLOODING_ABS_MINUS_B, abs(value) - b),
        (FLOODING_MISSING_PLUS_B, abs(value - b)),
        (FLOODING_IDENTITY, value),
    ]
    variants = [(hint, torch.tensor(v, dtype=torch.float64)) for hint, v in value_variants]
    _compare(report, got, expected, variants, what="flooded loss")
    _expect_differentiable(report, got)
    (grad,) = torch.autograd.grad(got, w_learner, allow_unused=True)
    grad = torch.zeros_like(w_learner) if grad is None else grad
    grad_variants = [(FLOODING_ZERO_GRAD, torch.zeros_like(plain_grad, dtype=torch.float64))]
    if value < b:
        grad_variants.append((FLOODING_NOT_FLIPPED, plain_grad.double()))
    _compare(
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
        _run_on_meta(report, lambda: learner_fn(loss, 0.1), ())
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


# --- distillation --------------------------------------------------------------------------------

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
    got = learner_fn(given, given_t, temperature)
    _expect_inputs_unchanged(report, {"student_logits": (given, s), "teacher_logits": (given_t, t)})
    variants = _distillation_variants(s, t, temperature)
    if nonfinite_hint != DISTILLATION_SWAPPED:
        variants = [v for v in variants if v[0] != DISTILLATION_SWAPPED]
    _compare(
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
    with report.case("meta tensors: student and teacher logits (4, 5)"):
        s, t = (torch.empty(4, 5, device="meta") for _ in range(2))
        _run_on_meta(report, lambda: learner_fn(s, t, 2.0), ())
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
