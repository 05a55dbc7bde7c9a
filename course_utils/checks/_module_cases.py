"""Shared by the layer and initialisation checks (group norm, residual block, dropout, LSTM forget
bias, final-layer bias).

Every check has the interface of ``course_utils.checks._report``::

    result = check_group_norm(group_norm)            # prints one PASS line, or FAIL lines
    result = check_group_norm(group_norm, hidden=True)  # + edge cases, and no calling the reference

It runs the learner's code on fresh inputs from a seeded ``torch.Generator`` (the same numbers on every
call), compares with the reference in ``course_utils.layers`` / ``course_utils.init``, and when an output is
wrong recomputes the classic buggy variants on the same input to name the bug. Random draws made by the
learner's own code (dropout masks, LSTM init) run under a forked, seeded CPU generator, so checks are
deterministic and leave the notebook's RNG untouched. Statistical tolerances sit at 10 standard deviations
or more: a correct answer cannot fail by bad luck. Checks run with one intra-op thread (restored
afterwards): their tensors are small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from course_utils.checks._guards import (
    WRONG_DEVICE_HINT,
    banned_names_in_source,
    tripwires,
)
from course_utils.checks._report import CaseFailed, Report, describe

NO_GRAD_HINT = (
    "parameters are leaf tensors that require grad, so change them inside "
    "`with torch.no_grad():` (e.g. `with torch.no_grad(): lstm.bias_ih_l0[H:2*H].fill_(1.0)`)"
)


DETACHED_HINT = (
    "the output is cut off from autograd (.detach(), .data, .numpy(), torch.no_grad() or "
    "torch.tensor(...) on the result); build it from x with tensor operations"
)


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _guard(hidden: bool, banned: list[str]) -> contextlib.AbstractContextManager[None]:
    return tripwires(banned) if hidden else contextlib.nullcontext()


@contextlib.contextmanager
def _seeded_rng(seed: int) -> Iterator[None]:
    """Seed the global CPU RNG for the learner's own random draws; restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # CPU only: GPU generators untouched
        yield


@contextlib.contextmanager
def _known_errors(report: Report, hints: dict[str, str]) -> Iterator[None]:
    """Turn an exception whose message contains a key of ``hints`` into a FAIL with that hint."""
    try:
        yield
    except Exception as error:
        text = str(error)
        for needle, hint in hints.items():
            if needle in text:
                first_line = text.strip().splitlines()[0] if text.strip() else ""
                report.fail(f"raised {type(error).__name__}: {first_line}. Looks like: {hint}")
        raise


HOST_SYNC_HINT = (
    "your function reads tensor values on the host (.item(), float(t), .numpy(), .tolist() or "
    "`if t > 0:`), which breaks on the meta device and stalls a GPU; keep it in tensor ops"
)


@contextlib.contextmanager
def _meta_run(report: Report) -> Iterator[None]:
    """Run learner code on meta tensors: a device mismatch fails with ``WRONG_DEVICE_HINT``, a host
    read with ``HOST_SYNC_HINT``; a torch op without a meta kernel is not the learner's fault, so
    the case ends there and passes."""
    try:
        yield
    except CaseFailed:
        raise
    except NotImplementedError as error:
        if "meta" in str(error).lower():
            return
        raise
    except Exception as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        said = f" (it raised {type(error).__name__}: {message})"
        lowered = message.lower()
        if any(key in lowered for key in ("item()", "ambiguous", "numpy", "data-dependent")):
            report.fail(HOST_SYNC_HINT + said)
        if any(key in lowered for key in ("meta", "same device", "incompatible tensor type")):
            report.fail(WRONG_DEVICE_HINT + said)
        raise


def _expect_meta_tensor(report: Report, got: object, shape: tuple[int, ...]) -> None:
    report.expect(isinstance(got, torch.Tensor), f"should return a tensor, got {describe(got)}")
    assert isinstance(got, torch.Tensor)
    if got.device.type != "meta":
        report.fail(
            f"returned a tensor on {got.device.type}, not on the input's device (meta): "
            f"{WRONG_DEVICE_HINT}"
        )
    report.expect(
        tuple(got.shape) == shape, f"output has shape {tuple(got.shape)}, expected {shape}"
    )


def _no_reference_case(report: Report, obj: Any, banned: list[str], what: str) -> None:
    with report.case("implements it without calling a library version"):
        found = banned_names_in_source(obj, banned)
        report.expect(
            not found,
            f"your answer calls {', '.join(found)}; the exercise is to write {what} yourself from "
            "basic tensor operations",
        )


def _matches(got: object, candidate: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    if not isinstance(got, torch.Tensor) or got.device.type == "meta":
        return False
    if tuple(got.shape) != tuple(candidate.shape):
        return False
    g = got.detach().to("cpu", torch.float64)
    return bool(torch.allclose(g, candidate.to(torch.float64), rtol=rtol, atol=atol))


def _diagnose(got: object, variants: dict[str, torch.Tensor], hints: dict[str, str]) -> str | None:
    for name, candidate in variants.items():
        if _matches(got, candidate):
            return hints[name]
    return None


REPLACED_PARAMETER_HINT = (
    "{names} replaced by new tensors: an optimizer built before the call still holds the old ones "
    "and would train parameters the model no longer uses; change the values in place "
    "(with torch.no_grad(): p.copy_(...) or p[...].fill_(...))"
)


def _expect_same_parameters(
    report: Report, module: nn.Module, before: dict[str, torch.Tensor]
) -> None:
    """Fail if any parameter object of ``module`` is not the one it had (``before``: name -> param)."""
    now = dict(module.named_parameters())
    replaced = [name for name, param in before.items() if now.get(name) is not param]
    if replaced:
        report.fail(REPLACED_PARAMETER_HINT.format(names=", ".join(replaced)))


def _expect_returns_module(report: Report, returned: object, module: nn.Module, what: str) -> None:
    report.expect(
        returned is module,
        f"{what} should return the module it was given (so calls chain), got {describe(returned)}",
    )
