"""Tests of ``check_batch_independence`` (course_utils/checks/batch_independence.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import copy

import pytest
import torch

from course_utils import sanity
from course_utils.checks import batch_independence as checks
from course_utils.checks._guards import WRONG_DEVICE_HINT
from tests.check_helpers import assert_fails, assert_passes, not_implemented


def dependence_with_backward(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x)[index].sum().backward()
    model.zero_grad(set_to_none=True)  # backward also filled the parameters' .grad
    return x.grad.flatten(1).norm(dim=1)


def dependence_loop(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    out = model(x)[index]
    (grad,) = torch.autograd.grad(out.sum(), x)
    return torch.stack([grad[n].pow(2).sum().sqrt() for n in range(x.shape[0])])


def dependence_sums_all_outputs(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.flatten(1).norm(dim=1)


def dependence_accumulates(model, x, index):
    x.requires_grad_(True)
    model(x)[index].sum().backward()
    return x.grad.detach().flatten(1).norm(dim=1)


def dependence_returns_gradient(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x)[index].sum().backward()
    return x.grad


def dependence_wrt_parameters(model, x, index):
    model.zero_grad()
    model(x)[index].sum().backward()
    return next(model.parameters()).grad


def dependence_wrt_all_parameters(model, x, index):
    return torch.autograd.grad(model(x)[index].sum(), list(model.parameters()))


def dependence_in_eval_mode(model, x, index):
    model.eval()
    return dependence_with_backward(model, x, index)


def dependence_squared(model, x, index):
    return dependence_with_backward(model, x, index) ** 2


def dependence_on_cpu(model, x, index):
    norms = torch.zeros(x.shape[0])
    grad = dependence_with_backward(model, x, index)
    return norms + grad


def dependence_calls_reference(model, x, index):
    return sanity.batch_dependence(model, x, index)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("answer", [dependence_with_backward, dependence_loop])
def test_batch_independence_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_batch_independence, answer, hidden)


def test_batch_independence_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, checks.check_batch_independence, sanity.batch_dependence)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (dependence_sums_all_outputs, ["independent MLP", "sum of ALL outputs"]),
        (dependence_accumulates, ["two calls on the same x", "accumulated"]),
        (dependence_returns_gradient, ["returned the gradient itself"]),
        (dependence_wrt_parameters, ["with respect to the weights"]),
        (dependence_wrt_all_parameters, ["gradients with respect to the parameters"]),
        (dependence_in_eval_mode, ["BatchNorm in train mode", "switched to eval mode"]),
        (dependence_squared, ["squared norms"]),
    ],
)
def test_batch_independence_names_classic_bugs(capsys, answer, fragments):
    assert_fails(capsys, checks.check_batch_independence, answer, *fragments)


def test_batch_independence_reports_not_implemented(capsys):
    assert_fails(capsys, checks.check_batch_independence, not_implemented, "not implemented yet")


def test_batch_independence_catches_tensors_on_the_wrong_device(capsys):
    assert_fails(
        capsys, checks.check_batch_independence, dependence_on_cpu, "meta device", WRONG_DEVICE_HINT
    )


def test_batch_independence_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        checks.check_batch_independence,
        dependence_calls_reference,
        "does not call the reference",
        hidden=True,
    )


def test_checks_leave_the_global_rng_and_thread_count_alone(capsys):
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    checks.check_batch_independence(dependence_with_backward)
    capsys.readouterr()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


# --- the caller's batch and model untouched (issue 17, class 2) ---


def dependence_leaves_parameter_grads(model, x, index):
    x = x.detach().clone().requires_grad_(True)
    model(x)[index].sum().backward()  # fills every parameter's .grad too
    return x.grad.flatten(1).norm(dim=1)


def dependence_flips_requires_grad(model, x, index):
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[index].sum(), x)
    return grad.flatten(1).norm(dim=1)


def dependence_scales_x_in_place(model, x, index):
    with torch.no_grad():
        x.mul_(1.0)  # harmless values, but then:
        x.add_(0.0).clamp_(-1e9, 1e9)
        x[0] = x[0] + 1.0
    return dependence_loop(model, x, index)


def dependence_leaves_eval_mode(model, x, index):
    model.eval()
    return dependence_loop(model, x, index)


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (dependence_leaves_parameter_grads, ["leaves gradients in the model's parameters"]),
        (dependence_flips_requires_grad, ["changes its input in place (x)", "requires_grad=True"]),
        (dependence_scales_x_in_place, ["changes its input in place (x): the values"]),
        (dependence_leaves_eval_mode, ["left in eval mode"]),
    ],
)
def test_batch_independence_fails_answers_that_change_the_callers_data(capsys, answer, fragments):
    assert_fails(capsys, checks.check_batch_independence, answer, *fragments)


def dependence_float64(model, x, index):
    # F.batch_norm(...) in the model is fine; the answer only differentiates a float64 copy
    leaf = x.detach().to(torch.float64).requires_grad_(True)
    model64 = copy.deepcopy(model).double()
    (grad,) = torch.autograd.grad(model64(leaf)[index].sum(), leaf)
    return grad.reshape(x.shape[0], -1).norm(dim=1).to(x.dtype)


def dependence_non_contiguous_copy(model, x, index):
    leaf = x.detach().transpose(0, -1).clone().transpose(0, -1).requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[index].sum(), leaf)
    return torch.linalg.vector_norm(grad, dim=tuple(range(1, grad.dim())))


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [dependence_with_backward, dependence_float64, dependence_non_contiguous_copy]
)
def test_batch_independence_passes_unusual_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, checks.check_batch_independence, answer, hidden)


# --- side effects are told also when the norms are wrong (issue 17, class 2) ---


def dependence_sums_all_outputs_on_the_callers_x(model, x, index):
    x.requires_grad_(True)  # on the caller's batch
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    return grad.flatten(1).norm(dim=1)


def test_batch_independence_wrong_and_mutating_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_batch_independence,
        dependence_sums_all_outputs_on_the_callers_x,
        "changes its input in place (x)",
        "sum of ALL outputs",
    )
