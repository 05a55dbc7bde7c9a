"""Tests of ``check_cosine_restarts`` (course_utils/checks/cosine_restarts.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import schedules
from course_utils.checks import cosine_restarts as checks
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def cosine_loop(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_closed_form(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    if T_mult == 1:
        t_cur, t_i = step % T_0, T_0
    else:
        n = math.floor(math.log(step / T_0 * (T_mult - 1) + 1, T_mult) + 1e-9)
        start = T_0 * (T_mult**n - 1) / (T_mult - 1)
        if step < start:  # float rounding put us one cycle too far
            n -= 1
            start = T_0 * (T_mult**n - 1) / (T_mult - 1)
        t_cur, t_i = step - start, T_0 * T_mult**n
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def cosine_late(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return base_lr if step < 1 else cosine_loop(step - 1, base_lr, T_0, T_mult, eta_min)


def cosine_early(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step + 1, base_lr, T_0, T_mult, eta_min)


def cosine_strict_greater(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur > t_i:
        t_cur -= t_i + 1
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cosine_no_t_mult(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step, base_lr, T_0, 1, eta_min)


def cosine_without_one_plus(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return eta_min + (base_lr - eta_min) * math.cos(math.pi * t_cur / t_i) / 2


def cosine_without_half(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return 2 * cosine_loop(step, base_lr, T_0, T_mult, eta_min) - eta_min


def cosine_ignores_eta_min(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return cosine_loop(step, base_lr, T_0, T_mult, 0.0)


def cosine_on_tensors(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    angle = torch.tensor(math.pi * t_cur / t_i, dtype=torch.float64)
    return eta_min + (base_lr - eta_min) * (1 + torch.cos(angle)) / 2


def cosine_with_torch_scheduler(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0, T_mult, eta_min
    )
    for _ in range(int(step)):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [cosine_loop, cosine_closed_form, cosine_on_tensors])
def test_cosine_restarts_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_cosine_restarts, answer, hidden)


def test_cosine_restarts_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_cosine_restarts, schedules.cosine_restart_lr)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (cosine_late, "restarts one step late"),
        (cosine_early, "restarts one step early"),
        (cosine_strict_greater, "cycles one step too long"),
        (cosine_no_t_mult, "ignores T_mult"),
        (cosine_without_one_plus, "missing the 1 +"),
        (cosine_without_half, "missing the 1/2"),
        (cosine_ignores_eta_min, "ignores eta_min"),
    ],
)
def test_cosine_restarts_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, checks.check_cosine_restarts, answer, "expected lr", fragment)


def test_cosine_restarts_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_cosine_restarts, not_implemented, "not implemented yet")


def test_cosine_restarts_hidden_catches_the_torch_scheduler(capsys):
    assert_fails(
        capsys,
        checks.check_cosine_restarts,
        cosine_with_torch_scheduler,
        "CosineAnnealingWarmRestarts",
        hidden=True,
    )


# --- every argument at its default and at other values; numbers told apart (issue 17, classes 4, 7) ---


def restart_wrong_defaults(step, base_lr, T_0, T_mult=2, eta_min=0.0):
    return schedules.cosine_restart_lr(step, base_lr, T_0, T_mult, eta_min)


def restart_keywords_swapped(step, base_lr, T_0, eta_min=0.0, T_mult=1):
    return schedules.cosine_restart_lr(step, base_lr, T_0, eta_min, T_mult)


def restart_off_by_a_hair(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return schedules.cosine_restart_lr(step, base_lr, T_0, T_mult, eta_min) * (1 + 3e-6)


def restart_period_capped(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return schedules.cosine_restart_lr(min(step, 999), base_lr, T_0, T_mult, eta_min)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (restart_wrong_defaults, ["T_mult and eta_min left at their defaults"]),
        (restart_keywords_swapped, ["as keyword arguments"]),
        (restart_period_capped, ["at step 1234 expected"]),
    ],
)
def test_cosine_restarts_tries_every_argument(capsys, answer, fragments):
    assert_fails(capsys, checks.check_cosine_restarts, answer, *fragments)


def test_cosine_restarts_prints_numbers_that_differ(capsys):
    out = assert_fails(
        capsys, checks.check_cosine_restarts, restart_off_by_a_hair, "relative error"
    )
    first = out.splitlines()[0]
    expected = first.split("expected lr ")[1].split(",")[0]
    got = first.split("got ")[1].split(" ")[0]
    assert expected != got


def restart_closed_form_cycles(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    # torch.optim.lr_scheduler.CosineAnnealingWarmRestarts gives the same numbers step by step
    if T_mult == 1:
        t_cur, t_i = step % T_0, T_0
    else:
        n = int(math.log(step / T_0 * (T_mult - 1) + 1, T_mult))
        t_cur, t_i = step - T_0 * (T_mult**n - 1) / (T_mult - 1), T_0 * T_mult**n
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


@pytest.mark.parametrize("hidden", [False, True])
def test_cosine_restarts_passes_a_closed_form_answer(capsys, hidden):
    assert_passes(capsys, checks.check_cosine_restarts, restart_closed_form_cycles, hidden)
