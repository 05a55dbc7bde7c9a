"""Tests of ``check_final_bias_init`` (course_utils/checks/final_bias_init.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import init as ref_init
from course_utils.checks.final_bias_init import check_final_bias_init
from tests.check_helpers import (
    DEVICE_HINT_START,
    assert_fail_lines,
    assert_pass_lines,
    not_implemented,
    run_check,
)


def final_bias_reference(layer, priors):
    return ref_init.init_final_bias_from_priors(layer, priors, weight_scale=0.01)


def final_bias_rewrite(layer, priors):
    with torch.no_grad():
        p = torch.as_tensor(priors, dtype=layer.bias.dtype, device=layer.bias.device)
        if layer.out_features == 1:
            layer.bias.fill_(0.0).add_(torch.log(p / (1 - p)))
        else:
            layer.bias.copy_(torch.log(p / p.sum()))
        layer.weight.zero_()
    return layer


def _bias_answer(formula):
    def answer(layer, priors):
        with torch.no_grad():
            p = torch.as_tensor(priors, dtype=torch.float64)
            layer.bias.copy_(formula(p))
            layer.weight.mul_(0.01)

    return answer


final_bias_log10 = _bias_answer(lambda p: torch.log10(p / p.sum()))


final_bias_logit = _bias_answer(lambda p: torch.log((p / p.sum()) / (1 - p / p.sum())))


final_bias_unnormalised = _bias_answer(torch.log)


final_bias_binary_log = _bias_answer(torch.log)


def final_bias_weights_untouched(layer, priors):
    with torch.no_grad():
        p = torch.as_tensor(priors, dtype=torch.float64)
        layer.bias.copy_(torch.log(p / p.sum()))


def final_bias_cpu_data(layer, priors):
    p = torch.as_tensor(priors, dtype=torch.float32)
    layer.bias.data = torch.log(p / p.sum())  # replaces the storage with a CPU tensor
    layer.weight.data.mul_(0.0)
    return layer


def final_bias_calls_reference(layer, priors):
    ref_init.init_final_bias_from_priors(layer, priors, weight_scale=0.0)


class TestCheckFinalBiasInit:
    def test_reference_passes_visible_and_hidden_with_binary(self, capsys):
        assert_pass_lines(run_check(capsys, check_final_bias_init, final_bias_reference)[0])
        assert_pass_lines(
            run_check(capsys, check_final_bias_init, final_bias_rewrite, binary=True)[0]
        )

    def test_rewrite_passes_hidden(self, capsys):
        assert_pass_lines(
            run_check(capsys, check_final_bias_init, final_bias_rewrite, hidden=True)[0]
        )

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (final_bias_log10, "log10 instead of the natural log"),
            (final_bias_logit, "binary logit ln(p/(1-p)) used for a softmax layer"),
            (final_bias_unnormalised, "priors were not normalised"),
            (final_bias_weights_untouched, "weights left at their default scale"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        assert_fail_lines(run_check(capsys, check_final_bias_init, answer)[0], needle)

    def test_multiclass_formula_on_a_single_logit_is_named(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_final_bias_init, final_bias_binary_log, binary=True)[0],
            "ln π used for a single sigmoid logit",
        )

    def test_not_implemented(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_final_bias_init, not_implemented)[0], "not implemented yet"
        )

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = run_check(capsys, check_final_bias_init, final_bias_cpu_data)[0]
        assert_fail_lines(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_reference_fails_hidden(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_final_bias_init, final_bias_calls_reference, hidden=True)[0],
            "init_final_bias_from_priors",
        )


def final_bias_new_parameter(layer, priors):
    p = torch.as_tensor(priors, dtype=layer.bias.dtype)
    layer.bias = nn.Parameter(
        torch.log(p / p.sum())
    )  # an optimizer built earlier keeps the old one
    with torch.no_grad():
        layer.weight.mul_(0.01)
    return layer


def final_bias_no_return(layer, priors):
    final_bias_reference(layer, priors)


# --- the priors untouched, every kind of priors (issue 17, classes 2, 4) ---


def final_bias_normalises_in_place(layer, priors):
    if isinstance(priors, torch.Tensor):
        priors /= priors.sum()  # the caller's counts become frequencies
    elif isinstance(priors, list):
        total = sum(priors)
        priors[:] = [p / total for p in priors]
    return final_bias_rewrite(layer, priors)


def final_bias_float64_then_copied(layer, priors):
    # F.log_softmax(...) of log priors is the same thing; here ln(p / sum p) in float64
    p = torch.as_tensor(priors).to(torch.float64).reshape(-1)
    with torch.no_grad():
        target = torch.log(p / (1 - p)) if layer.out_features == 1 else torch.log(p / p.sum())
        layer.bias.copy_(target.to(layer.bias.dtype))
        layer.weight.mul_(1e-3)
    return layer


def test_final_bias_fails_priors_changed_in_place(capsys):
    result, _ = run_check(capsys, check_final_bias_init, final_bias_normalises_in_place)
    assert_fail_lines(result, "changes its input in place (priors)", "10 classes")


@pytest.mark.parametrize("hidden", [False, True])
def test_final_bias_passes_a_float64_answer_on_every_kind_of_priors(capsys, hidden):
    result, _ = run_check(
        capsys, check_final_bias_init, final_bias_float64_then_copied, hidden=hidden, binary=True
    )
    assert_pass_lines(result)


# --- side effects are told also when the bias is wrong (issue 17, class 2) ---


def final_bias_log10_normalising_priors_in_place(layer, priors):
    if isinstance(priors, torch.Tensor):
        priors /= priors.sum()  # the caller's priors
    return final_bias_log10(layer, priors)


def test_final_bias_wrong_and_mutating_is_told_both(capsys):
    result, _ = run_check(
        capsys, check_final_bias_init, final_bias_log10_normalising_priors_in_place
    )
    assert_fail_lines(result, "changes its input in place (priors)", "log10")
