"""Shared by the loss checks (focal loss, label smoothing, flooding, distillation).

Every loss check runs the learner's function on fresh seeded random inputs and on edge cases, compares with
the reference in ``course_utils.losses`` (computed in float64), value and gradient, and prints one ``PASS``
line or one ``FAIL`` line per failing case. When a wrong answer matches a known buggy variant computed on
the same input, the ``FAIL`` line names that bug. Every check also runs the function on ``meta`` tensors,
which catches tensors created on the wrong device and host reads such as ``.item()``. ``hidden=True`` adds
edge cases and fails answers that call the reference (our ``course_utils.losses`` or the library function
the exercise replaces).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    ReferenceCalled,
    banned_names_in_source,
    keywords_in_source,
    tripwires,
)
from course_utils.checks._report import Report

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
    keyword argument counts as calling ``name``. ``tripwires`` leaves unpatched the functions of
    modules not yet imported outside the course and torch (see there).
    """
    with report.case("hidden test: the answer implements the loss itself"):
        found = banned_names_in_source(learner_fn, banned)
        passed = keywords_in_source(learner_fn, [keyword for keyword, _ in source_keywords])
        found += [name for keyword, name in source_keywords if keyword in passed]
        if found:
            names = ", ".join(dict.fromkeys(found))
            report.fail(f"your answer calls {names}; the exercise is to write this loss yourself")
        with tripwires(banned):
            try:
                call()
            except ReferenceCalled as error:
                report.fail(str(error))
            except Exception:  # other errors are reported by the value cases
                pass
