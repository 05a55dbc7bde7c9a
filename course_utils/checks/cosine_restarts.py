"""Check for stage 05's ``cosine_restart_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0) -> float``.

The learning rate of ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` after ``step`` scheduler
steps (SGDR, Loshchilov & Hutter 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from course_utils import schedules
from course_utils.checks._library_calls import _reference_case
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
    for steps 0..59 (T_0=10, T_mult=1) and 0..99 (T_0=5, T_mult=2, eta_min=1e-3). Hidden: T_0=1,
    T_mult=3; fractional steps (epoch + batch / batches); fails answers using the torch scheduler.
    """
    report = Report("cosine_restarts")
    cases: list[tuple[float, int, int, float, list[float]]] = [
        (0.1, 10, 1, 0.0, [float(s) for s in range(60)]),
        (0.05, 5, 2, 1e-3, [float(s) for s in range(100)]),
    ]
    if hidden:
        cases += [
            (1.0, 1, 3, 0.0, [float(s) for s in range(41)]),
            (0.1, 3, 2, 0.01, [s / 4 for s in range(0, 90)]),
            (0.3, 7, 1, 0.05, [float(s) for s in range(50)]),
        ]
    for base_lr, T_0, T_mult, eta_min, steps in cases:
        label = f"base_lr={base_lr}, T_0={T_0}, T_mult={T_mult}, eta_min={eta_min}"
        with report.case(label):
            expected = [
                schedules.cosine_restart_lr(s, base_lr, T_0, T_mult, eta_min) for s in steps
            ]
            got = []
            for s in steps:
                step = int(s) if float(s).is_integer() else s
                got.append(
                    _as_float(
                        report,
                        learner_fn(step, base_lr, T_0, T_mult, eta_min),
                        f"the lr at step {step}",
                    )
                )
            wrong = [
                i
                for i, (g, e) in enumerate(zip(got, expected, strict=True))
                if not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-9)
            ]
            if not wrong:
                continue
            i = wrong[0]
            message = (
                f"at step {steps[i]:g} expected lr {expected[i]:.6g}, got {got[i]:.6g} "
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
