"""Tests of ``check_flooding`` (course_utils/checks/flooding.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch

import course_utils.losses
from course_utils.checks.flooding import check_flooding
from tests.check_helpers import (
    DETACHED,
    DEVICE_HINT,
    IN_PLACE,
    NOT_IMPLEMENTED,
    assert_fails,
    assert_passes,
    not_implemented,
)

HOST_READ_HINT = "reads tensor values on the host"


def flood_reference(loss, b):
    return (loss - b).abs() + b


def flood_with_where(loss, b):
    return torch.where(loss < b, 2 * b - loss, loss)


def flood_clamp(loss, b):
    return torch.clamp(loss, min=b)


def flood_python_max(loss, b):
    return max(loss, b)


def flood_abs_minus_b(loss, b):
    return abs(loss) - b


def flood_missing_plus_b(loss, b):
    return (loss - b).abs()


def flood_detached(loss, b):
    return ((loss - b).abs() + b).detach()


def flood_python_number(loss, b):
    return abs(loss.item() - b) + b


def flood_gradient_not_flipped(loss, b):
    return loss + 2 * (b - loss).clamp(min=0).detach()


def flood_detached_branch(loss, b):
    return torch.where(loss < b, (2 * b - loss).detach(), loss)


def flood_branches_on_value(loss, b):
    if loss > b:
        return loss
    return 2 * b - loss


def flood_wrong_device(loss, b):
    level = torch.full((1,), b)
    return ((loss - level).abs() + level).sum()


def flood_calls_course_utils(loss, b):
    return course_utils.losses.flooded(loss, b)


def test_flooding_check_passes_the_reference(capsys):
    assert_passes(capsys, check_flooding, flood_reference)
    assert_passes(capsys, check_flooding, flood_reference, hidden=True)


def test_flooding_check_passes_a_differently_written_correct_answer(capsys):
    assert_passes(capsys, check_flooding, flood_with_where, hidden=True)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (flood_clamp, "a clamp"),
        (flood_python_max, "a clamp"),
        (flood_abs_minus_b, "abs(loss) - b"),
        (flood_missing_plus_b, "without the + b"),
        (flood_detached, DETACHED),
        (flood_python_number, DETACHED),
        (flood_gradient_not_flipped, "gradient has the plain loss's sign"),
        (flood_detached_branch, "zero gradient below b"),
        (flood_branches_on_value, HOST_READ_HINT),
        (flood_wrong_device, DEVICE_HINT),
        (not_implemented, NOT_IMPLEMENTED),
    ],
)
def test_flooding_check_names_the_bug(fn, hint, capsys):
    assert_fails(capsys, check_flooding, fn, hint)


def flood_without_meta_kernel(loss, b):
    if loss.device.type == "meta":
        raise NotImplementedError(
            "Could not run 'aten::abs' with arguments from the 'Meta' backend"
        )
    return flood_reference(loss, b)


def test_an_op_without_a_meta_kernel_is_not_blamed_on_the_learner(capsys):
    assert_passes(capsys, check_flooding, flood_without_meta_kernel)


def test_flooding_hidden_check_fails_answers_that_call_the_reference(capsys):
    assert_passes(capsys, check_flooding, flood_calls_course_utils)
    assert_fails(
        capsys, check_flooding, flood_calls_course_utils, "course_utils.losses.flooded", hidden=True
    )


def flood_shifts_the_loss_in_place(loss, b):
    out = (loss - b).abs() + b
    with torch.no_grad():
        loss.copy_(out)  # the caller's loss now reads the flooded value (what it logs is wrong)
    return out


def flood_returns_nothing(loss, b):
    (loss - b).abs() + b


def test_flooding_check_fails_an_answer_that_changes_the_loss_in_place(capsys):
    assert_fails(capsys, check_flooding, flood_shifts_the_loss_in_place, IN_PLACE + " (loss)")


def test_flooding_check_says_returned_none(capsys):
    text = assert_fails(capsys, check_flooding, flood_returns_nothing, "returned None")
    assert "NoneType" not in text


def flood_with_in_place_ops(loss, b):
    return loss.sub_(b).abs_().add_(b)  # writes through the caller's loss (a non-leaf)


def flood_subtracts_b_in_place(loss, b):
    loss.sub_(b)
    return loss.abs() + b


@pytest.mark.parametrize("answer", [flood_with_in_place_ops, flood_subtracts_b_in_place])
def test_flooding_check_names_in_place_ops_on_the_loss(capsys, answer):
    """Through the trusted channel too: the loss arrives as the output of an op, as in a kernel
    (it used to arrive as a leaf, where the in-place op raised instead)."""
    text = assert_fails(capsys, check_flooding, answer, IN_PLACE + " (loss)")
    assert "leaf Variable" not in text
