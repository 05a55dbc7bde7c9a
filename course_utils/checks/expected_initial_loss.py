"""Check for stage 02's ``expected_initial_loss(num_classes) -> float``: the loss at init,
ln C (the cross-entropy of a uniform guess).

What the check verifies:

- value: ln C to relative 1e-5; a classic bug (log10, log2, 1/C, sign, ln(C-1)) named only when the number
  matches it; expected and got printed with enough digits to differ.
- every argument: C from 2 to 50,000 (hidden: 1, 7, 100).
- contract: one number (float, NumPy scalar or one-element tensor; None or several numbers are named as
  such); hidden: no call of the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from course_utils.checks._library_calls import _reference_case
from course_utils.checks._numbers import differing
from course_utils.checks._report import CheckResult, Report
from course_utils.checks._values import _as_float, _first_match

__all__ = ["check_expected_initial_loss"]


def check_expected_initial_loss(
    learner_fn: Callable[[int], float], *, hidden: bool = False
) -> CheckResult:
    """Check ``expected_initial_loss(num_classes) -> float``: the cross-entropy of a uniform guess.

    Expected: -ln(1/C) = ln C (natural log: PyTorch's cross-entropy is in nats). The answer may
    return a float or a one-element tensor. Tried on C = 10, 2, 1000, 3, 50,000 (hidden: 7, 100, 1).
    """
    report = Report("expected_initial_loss")
    classes = [10, 2, 1000, 3, 50_000] + ([7, 100, 1] if hidden else [])
    for c in classes:
        with report.case(f"num_classes={c}"):
            got = _as_float(report, learner_fn(c), "the expected initial loss")
            expected = math.log(c)
            if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6):
                continue
            variants = {
                "log10 instead of the natural log; cross-entropy uses ln (math.log / np.log)": (
                    lambda c=c: math.log10(c)
                ),
                "log2 instead of the natural log (bits, not nats); use math.log": (
                    lambda c=c: math.log2(c)
                ),
                "the probability 1/C of the true class, not the loss -ln(1/C)": lambda c=c: 1 / c,
                "wrong sign: the loss is -ln(1/C) = +ln C, which is positive": (
                    lambda c=c: -math.log(c)
                ),
                "ln(C-1): a uniform guess spreads the probability over all C classes, p = 1/C": (
                    lambda c=c: math.log(c - 1)
                ),
            }
            hint = _first_match(got, variants, lambda g, v: math.isclose(g, v, rel_tol=1e-5))
            shown_expected, shown_got = differing(expected, got)
            message = f"expected ln({c}) = {shown_expected}, got {shown_got}"
            report.fail(message + (f". Looks like: {hint}" if hint else ""))
    if hidden:
        _reference_case(
            report,
            learner_fn,
            ["course_utils.sanity.expected_initial_loss"],
            lambda: learner_fn(10),
        )
    return report.finish(f"ln C for C in {classes}")
