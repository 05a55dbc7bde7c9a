"""Saying where an answer differs, and naming a bug only when the input can tell it apart
(used by the checks of stages 03, 04 and 06).

- ``expect_close_at(report, got, expected, ...)``: ``Report.expect_close`` that says "returned None"
  for a missing return, and on a value mismatch names the index of the largest error, both values
  there with enough digits to differ, and how many elements are off, so the FAIL line never shows
  expected and got with identical rounded numbers.
- ``unambiguous(variants)``: the buggy variants ``(hint, value)`` whose value, on this input, no
  variant naming another bug shares; a hint is printed only when the evidence identifies that bug.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from course_utils.checks._report import Report, describe


def _as64(value: object) -> torch.Tensor | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if not isinstance(value, torch.Tensor) or value.device.type == "meta":
        return None
    return value.detach().to("cpu", torch.float64)


def _same(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def where_it_differs(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str:
    """``at index (i, j) of shape (N, C): expected 0.1234567, got 0.1234612; 3 of 40 elements
    differ`` for two float64 tensors of one shape (empty if they agree)."""
    bad = ~torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    count = int(bad.sum())
    if count == 0:
        return ""
    excess = (got - expected).abs() - (atol + rtol * expected.abs())
    excess = torch.where(bad, excess.nan_to_num(nan=float("inf")), torch.full_like(excess, -1.0))
    flat = int(excess.reshape(-1).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), expected.shape))
    e, g = float(expected.reshape(-1)[flat]), float(got.reshape(-1)[flat])
    digits = 4
    while digits < 12 and f"{e:.{digits}g}" == f"{g:.{digits}g}":
        digits += 2
    where = f"at index {index} of shape {tuple(expected.shape)}: " if expected.ndim else ""
    text = f"{where}expected {e:.{digits}g}, got {g:.{digits}g}"
    if expected.numel() > 1:
        text += f"; {count} of {expected.numel()} elements differ"
    return text


def expect_close_at(
    report: Report,
    got: object,
    expected: torch.Tensor | float,
    *,
    what: str = "output",
    hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail the current case unless ``got`` is close to ``expected``; say where it is not."""
    expected64 = torch.as_tensor(expected).detach().to("cpu", torch.float64)
    looks = f". Looks like: {hint}" if hint else ""
    if got is None:
        report.fail(f"returned None (a missing return statement?); expected the {what}")
    got64 = _as64(got)
    if got64 is None:
        report.fail(f"{what} should be a tensor, got {describe(got)}{looks}")
    assert got64 is not None
    if got64.shape != expected64.shape:
        report.fail(
            f"{what} has shape {tuple(got64.shape)}, expected {tuple(expected64.shape)}{looks}"
        )
    if not _same(got64, expected64, rtol, atol):
        report.fail(f"{what} {where_it_differs(got64, expected64, rtol, atol)}{looks}")


def unambiguous(
    variants: Sequence[tuple[str, torch.Tensor]], rtol: float = 1e-4, atol: float = 1e-5
) -> list[tuple[str, torch.Tensor]]:
    """The variants whose value no variant with a different hint shares on this input."""
    values = [(hint, v.detach().to("cpu", torch.float64)) for hint, v in variants]
    kept = []
    for i, (hint, value) in enumerate(values):
        clash = any(
            other != hint and _same(value, v, rtol, atol)
            for j, (other, v) in enumerate(values)
            if j != i
        )
        if not clash:
            kept.append(variants[i])
    return kept


def compare_named(
    report: Report,
    got: object,
    expected: torch.Tensor,
    variants: Sequence[tuple[str, torch.Tensor]] = (),
    *,
    what: str = "output",
    nonfinite_hint: str | None = None,
    fallback_hint: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Fail the current case unless ``got`` matches ``expected``, naming the one buggy variant it
    equals (among those the input tells apart), else ``nonfinite_hint`` when only ``got`` has
    nan/inf, else ``fallback_hint``; the message says where the values differ."""
    expected64 = expected.detach().to("cpu", torch.float64)
    got64 = _as64(got)
    if got64 is not None and _same(got64, expected64, rtol, atol):
        return
    hint = None
    if got64 is not None:
        for name, value in unambiguous(variants, rtol, atol):
            if _same(got64, value.detach().to("cpu", torch.float64), rtol, atol):
                hint = name
                break
        blew_up = not bool(got64.isfinite().all()) and bool(expected64.isfinite().all())
        if hint is None and blew_up:
            hint = nonfinite_hint
    expect_close_at(
        report, got, expected64, what=what, hint=hint or fallback_hint, rtol=rtol, atol=atol
    )


def returning(
    report: Report, call: Callable[[], object], what: str = "a tensor"
) -> Callable[[], object]:
    """``call`` that fails the case with "returned None" instead of handing None on (to a meta or
    shape check that would blame a detached output or a shape)."""

    def run() -> object:
        out = call()
        if out is None:
            report.fail(f"returned None (a missing return statement?); expected {what}")
        return out

    return run
