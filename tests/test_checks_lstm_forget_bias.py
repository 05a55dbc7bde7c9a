"""Tests of ``check_lstm_forget_bias`` (course_utils/checks/lstm_forget_bias.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils import init as ref_init
from course_utils.checks.lstm_forget_bias import check_lstm_forget_bias
from tests.check_helpers import (
    DEVICE_HINT_START,
    assert_fail_lines,
    assert_pass_lines,
    not_implemented,
    run_check,
)


def forget_rewrite(lstm, value=1.0):
    """Correct: moves all of bias_hh into bias_ih, then sets the forget slice."""
    hidden = lstm.hidden_size
    params = dict(lstm.named_parameters())
    with torch.no_grad():
        for name, b_ih in params.items():
            if name.startswith("bias_ih"):
                b_hh = params[name.replace("bias_ih", "bias_hh")]
                b_ih.add_(b_hh)
                b_hh.zero_()
                b_ih[hidden : 2 * hidden] = value
    return lstm


def _fill(lstm, value, rows, vectors=("bias_ih",), keep=lambda name: True):
    hidden = lstm.hidden_size
    start, stop = rows
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if not keep(name):
                continue
            if name.startswith(vectors):
                p[start * hidden : stop * hidden] = value
            elif name.startswith("bias_hh"):
                p[start * hidden : stop * hidden] = 0.0


def forget_both_filled(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if "bias" in name:
                p[hidden : 2 * hidden].fill_(value)


def forget_input_slice(lstm, value=1.0):
    _fill(lstm, value, (0, 1))


def forget_cell_slice(lstm, value=1.0):
    _fill(lstm, value, (2, 3))


def forget_first_layer_only(lstm, value=1.0):
    _fill(lstm, value, (1, 2), keep=lambda name: name.endswith(("l0", "l0_reverse")))


def forget_forward_only(lstm, value=1.0):
    _fill(lstm, value, (1, 2), keep=lambda name: "reverse" not in name)


def forget_zero_other_gates(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p.zero_()
                p[hidden : 2 * hidden].fill_(value)
            elif name.startswith("bias_hh"):
                p.zero_()


def forget_without_no_grad(lstm, value=1.0):
    hidden = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            p[hidden : 2 * hidden] = value
        elif name.startswith("bias_hh"):
            p[hidden : 2 * hidden] = 0.0


def forget_cpu_tensor(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p.copy_(torch.cat([p[:hidden], torch.full((hidden,), value), p[2 * hidden :]]))
            elif name.startswith("bias_hh"):
                p[hidden : 2 * hidden] = 0.0
    return lstm


def forget_calls_reference(lstm, value=1.0):
    ref_init.set_lstm_forget_bias(lstm, value)


class TestCheckLstmForgetBias:
    def test_reference_passes_visible_and_hidden(self, capsys):
        assert_pass_lines(
            run_check(capsys, check_lstm_forget_bias, ref_init.set_lstm_forget_bias)[0]
        )
        assert_pass_lines(
            run_check(capsys, check_lstm_forget_bias, ref_init.set_lstm_forget_bias, hidden=True)[0]
        )

    def test_rewrite_that_merges_both_biases_passes_hidden(self, capsys):
        assert_pass_lines(run_check(capsys, check_lstm_forget_bias, forget_rewrite, hidden=True)[0])

    @pytest.mark.parametrize(
        ("answer", "needle"),
        [
            (forget_both_filled, "both bias_ih and bias_hh were filled"),
            (forget_input_slice, "input gate's slice [0H:1H]"),
            (forget_cell_slice, "cell (g) gate's slice [2H:3H]"),
            (forget_first_layer_only, "only the first layer"),
            (forget_forward_only, "only the forward direction"),
            (forget_zero_other_gates, "(zeroed)"),
            (forget_without_no_grad, "torch.no_grad()"),
        ],
    )
    def test_classic_bug_is_named(self, answer, needle, capsys):
        assert_fail_lines(run_check(capsys, check_lstm_forget_bias, answer)[0], needle)

    def test_not_implemented(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_lstm_forget_bias, not_implemented)[0], "not implemented yet"
        )

    def test_cpu_tensor_fails_with_device_hint(self, capsys):
        result = run_check(capsys, check_lstm_forget_bias, forget_cpu_tensor)[0]
        assert_fail_lines(result, DEVICE_HINT_START)
        assert len(result.lines) == 1

    def test_calling_the_reference_fails_hidden(self, capsys):
        assert_fail_lines(
            run_check(capsys, check_lstm_forget_bias, forget_calls_reference, hidden=True)[0],
            "set_lstm_forget_bias",
        )


def forget_new_parameters(lstm, value=1.0):
    hidden = lstm.hidden_size
    for name, param in list(lstm.named_parameters()):
        if name.startswith(("bias_ih", "bias_hh")):
            fresh = param.detach().clone()
            fresh[hidden : 2 * hidden] = value if name.startswith("bias_ih") else 0.0
            setattr(lstm, name, nn.Parameter(fresh))
    return lstm


def forget_no_return(lstm, value=1.0):
    ref_init.set_lstm_forget_bias(lstm, value)


def set_forget_bias_leaves_grad(lstm, value=1.0):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                param[hidden : 2 * hidden].fill_(value)
            elif name.startswith("bias_hh"):
                param[hidden : 2 * hidden].zero_()
    for param in lstm.parameters():
        param.grad = torch.zeros_like(param)  # e.g. from a test forward/backward pass
    return lstm


def test_lstm_check_fails_gradients_left_on_the_parameters(capsys):
    result = run_check(capsys, check_lstm_forget_bias, set_forget_bias_leaves_grad)[0]
    assert_fail_lines(result, "leaves .grad on")
