"""Check for stage 05's ``cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float``.

The learning rate of ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` after ``step`` scheduler
steps (SGDR, Loshchilov & Hutter 2017).

What the check verifies:

- value: the lr at every step against ``course_utils.schedules.cosine_restart_lr`` (relative 1e-6); on a
  mismatch, the whole sequence is compared with each classic bug (off-by-one restarts, T_mult or eta_min
  ignored, missing 1 + or 1/2, no pi, T_i - 1) and a bug is named only when it matches every step; the
  first differing step is printed with enough digits to tell the two numbers apart.
- every argument: T_mult and eta_min at their defaults (omitted) and at other values, passed positionally
  and by keyword; steps far past the first cycles (100,000; the 16th doubling cycle); hidden: fractional
  steps, T_0 = 1.
- contract: a number per call; hidden: no torch scheduler or course reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from course_utils import schedules
from course_utils.checks._library_calls import _reference_case
from course_utils.checks._numbers import differing
from course_utils.checks._report import CheckResult, Report
from course_utils.checks._values import _as_float

__all__ = ["check_cosine_restarts"]


def _cosine(t_cur: float, t_i: float, base_lr: float, eta_min: float) -> float:
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def _restart_variants(
    base_lr: float, T_0: int, T_mult: int, eta_min: float
) -> dict[str, Callable[[float], float]]:
    def position(step: float) -> tuple[float, int]:
        return schedules._position_in_cycle(step, T_0, T_mult)

    def one_longer(step: float) -> float:  # `>` instead of `>=`: cycles of T_i + 1 steps
        t_cur, t_i = step, T_0
        while t_cur > t_i:
            t_cur -= t_i + 1
            t_i *= T_mult
        return _cosine(t_cur, t_i, base_lr, eta_min)

    def with_factor(fn: Callable[[float, float], float]) -> Callable[[float], float]:
        def lr(step: float) -> float:
            t_cur, t_i = position(step)
            return fn(math.pi * t_cur / t_i, base_lr)

        return lr

    ref = schedules.cosine_restart_lr
    return {
        "restarts one step late (the sequence is shifted right by one step)": lambda s: (
            base_lr if s < 1 else ref(s - 1, base_lr, T_0, T_mult, eta_min)
        ),
        "restarts one step early (step counted from 1 instead of 0)": lambda s: ref(
            s + 1, base_lr, T_0, T_mult, eta_min
        ),
        "cycles one step too long (`>` instead of `>=` when testing for the restart; the lr should "
        "be base_lr again at T_cur = T_i, not eta_min)": one_longer,
        "ignores T_mult: each cycle should be T_mult times longer than the previous "
        "one": lambda s: ref(s, base_lr, T_0, 1, eta_min),
        "missing the 1 + in (1 + cos(pi * T_cur / T_i)) / 2": with_factor(
            lambda a, b: eta_min + (b - eta_min) * math.cos(a) / 2
        ),
        "missing the 1/2 in (1 + cos(pi * T_cur / T_i)) / 2": with_factor(
            lambda a, b: eta_min + (b - eta_min) * (1 + math.cos(a))
        ),
        "ignores eta_min: lr = eta_min + (base_lr - eta_min) * (1 + cos(...)) / 2": with_factor(
            lambda a, b: b * (1 + math.cos(a)) / 2
        ),
        "adds eta_min without subtracting it from base_lr: "
        "lr = eta_min + (base_lr - eta_min) * ...": (
            with_factor(lambda a, b: eta_min + b * (1 + math.cos(a)) / 2)
        ),
        "cos(T_cur / T_i) without the pi": lambda s: (
            eta_min + (base_lr - eta_min) * (1 + math.cos(position(s)[0] / position(s)[1])) / 2
        ),
        "divides by T_i - 1, so the lr reaches eta_min one step before the restart": lambda s: (
            _cosine(position(s)[0], max(position(s)[1] - 1, 1), base_lr, eta_min)
        ),
    }


def check_cosine_restarts(learner_fn: Callable[..., float], *, hidden: bool = False) -> CheckResult:
    """Check ``cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float``.

    Expected: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2 with T_cur the
    steps since the last restart and T_i the current cycle length (T_0, then T_0 * T_mult, ...): the
    lr of ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` after ``step`` calls of
    ``scheduler.step()``. Called positionally as ``learner_fn(step, base_lr, T_0, T_mult, eta_min)``
    for steps 0..59 (T_0=10, T_mult=1) and 0..99 (T_0=5, T_mult=2, eta_min=1e-3, and a step in the
    16th cycle); with T_mult and eta_min left at their defaults (steps up to 100,000); with them as
    keyword arguments (T_0=4, T_mult=3, eta_min=0.02). Hidden: T_0=1,
    T_mult=3; fractional steps (epoch + batch / batches); fails answers using the torch scheduler.
    """
    report = Report("cosine_restarts")

    def positional(
        base_lr: float, T_0: int, T_mult: int, eta_min: float
    ) -> Callable[[float], object]:
        return lambda step: learner_fn(step, base_lr, T_0, T_mult, eta_min)

    cases: list[
        tuple[str, Callable[[float], object], tuple[float, int, int, float], list[float]]
    ] = [
        (
            "base_lr=0.1, T_0=10, T_mult and eta_min left at their defaults",
            lambda step: learner_fn(step, 0.1, 10),
            (0.1, 10, 1, 0.0),
            [float(s) for s in range(25)] + [1234.0, 100_000.0],
        ),
        ("", positional(0.1, 10, 1, 0.0), (0.1, 10, 1, 0.0), [float(s) for s in range(60)]),
        (
            "",
            positional(0.05, 5, 2, 1e-3),
            (0.05, 5, 2, 1e-3),
            [float(s) for s in range(100)] + [5 * (2**16 - 1) + 7.0],
        ),
        (
            "base_lr=0.2, T_0=4, eta_min=0.02, T_mult=3 as keyword arguments",
            lambda step: learner_fn(step, 0.2, 4, eta_min=0.02, T_mult=3),
            (0.2, 4, 3, 0.02),
            [float(s) for s in range(60)],
        ),
    ]
    if hidden:
        cases += [
            ("", positional(1.0, 1, 3, 0.0), (1.0, 1, 3, 0.0), [float(s) for s in range(41)]),
            ("", positional(0.1, 3, 2, 0.01), (0.1, 3, 2, 0.01), [s / 4 for s in range(0, 90)]),
            ("", positional(0.3, 7, 1, 0.05), (0.3, 7, 1, 0.05), [float(s) for s in range(50)]),
        ]
    for label, call, (base_lr, T_0, T_mult, eta_min), steps in cases:
        label = label or f"base_lr={base_lr}, T_0={T_0}, T_mult={T_mult}, eta_min={eta_min}"
        with report.case(label):
            expected = [
                schedules.cosine_restart_lr(s, base_lr, T_0, T_mult, eta_min) for s in steps
            ]
            got = []
            for s in steps:
                step = int(s) if float(s).is_integer() else s
                got.append(_as_float(report, call(step), f"the lr at step {step}"))
            wrong = [
                i
                for i, (g, e) in enumerate(zip(got, expected, strict=True))
                if not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-9)
            ]
            if not wrong:
                continue
            i = wrong[0]
            shown_expected, shown_got = differing(expected[i], got[i])
            message = (
                f"at step {steps[i]:g} expected lr {shown_expected}, got {shown_got} "
                f"({len(wrong)} of {len(steps)} steps differ)"
            )
            variants = _restart_variants(base_lr, T_0, T_mult, eta_min)
            for hint, variant in variants.items():
                try:
                    values = [variant(s) for s in steps]
                except Exception:  # a variant undefined here matches nothing
                    continue
                if all(
                    math.isclose(g, v, rel_tol=1e-6, abs_tol=1e-9)
                    for g, v in zip(got, values, strict=True)
                ):
                    message += f". Looks like: {hint}"
                    break
            report.fail(message)
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
                "course_utils.schedules.cosine_restart_lr",
            ],
            lambda: learner_fn(3, 0.1, 10, 1, 0.0),
        )
    return report.finish(
        "matches CosineAnnealingWarmRestarts step by step, with and without T_mult"
    )
