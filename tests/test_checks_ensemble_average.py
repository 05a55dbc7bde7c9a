"""Tests of ``check_ensemble_average`` (course_utils/checks/ensemble_average.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from course_utils import ensemble
from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.checks.ensemble_average import check_ensemble_average
from tests.check_helpers import IN_PLACE, assert_fails, assert_passes, not_implemented


def average_with_loop(logits_list):
    total = None
    for logits in logits_list:
        p = F.softmax(logits, dim=1)
        total = p if total is None else total + p
    return total / len(logits_list)


def average_logits_then_softmax(logits_list):
    return torch.stack(list(logits_list)).mean(0).softmax(-1)


def average_without_softmax(logits_list):
    return torch.stack(list(logits_list)).mean(0)


def average_votes(logits_list):
    stacked = torch.stack(list(logits_list))
    votes = F.one_hot(stacked.argmax(-1), stacked.shape[-1]).to(stacked.dtype)
    return votes.mean(0)


def average_softmax_over_samples(logits_list):
    return torch.stack([z.softmax(dim=0) for z in logits_list]).mean(0)


def average_softmax_over_models(logits_list):
    return torch.stack(list(logits_list)).softmax(0).mean(0)


def average_over_samples_axis(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).mean(1)


def average_over_classes_axis(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).mean(-1)


def average_summed(logits_list):
    return torch.stack(list(logits_list)).softmax(-1).sum(0)


def average_manual_exp(logits_list):
    stacked = torch.stack(list(logits_list))
    e = stacked.exp()
    return (e / e.sum(-1, keepdim=True)).mean(0)


def average_in_float32(logits_list):
    return torch.stack([z.float() for z in logits_list]).softmax(-1).mean(0)


def average_on_cpu(logits_list):
    total = torch.zeros(logits_list[0].shape)
    for z in logits_list:
        total = total + z.softmax(-1)
    return total / len(logits_list)


def average_noisily(logits_list):
    warnings.warn("a learner's debugging warning", stacklevel=1)
    print("debugging output", file=sys.stderr)
    return torch.stack(list(logits_list)).softmax(-1).mean(0)


def test_ensemble_average_keeps_the_answers_stderr_and_warnings_off_stderr(capsys):
    assert_passes(capsys, check_ensemble_average, average_noisily, hidden=True)


def average_calls_reference(logits_list):
    return ensemble.average_probabilities(logits_list)


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize(
    "answer", [average_with_loop, lambda zs: torch.stack(list(zs)).softmax(-1).mean(0)]
)
def test_ensemble_average_passes_correct_answers(capsys, answer, hidden):
    assert_passes(capsys, check_ensemble_average, answer, hidden)


def test_ensemble_average_passes_the_reference_when_not_hidden(capsys):
    assert_passes(capsys, check_ensemble_average, ensemble.average_probabilities)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (average_logits_then_softmax, "averaged the logits, then applied softmax"),
        (average_without_softmax, "forgot the softmax"),
        (average_votes, "hard voting"),
        (average_softmax_over_samples, "softmax over the samples axis"),
        (average_softmax_over_models, "softmax over the models axis"),
        (average_over_samples_axis, "averaged over the samples axis"),
        (average_over_classes_axis, "averaged over the classes axis"),
        (average_summed, "summed the probabilities"),
        (average_manual_exp, "exp overflowed"),
        (average_in_float32, "dtype should match"),
    ],
)
def test_ensemble_average_names_classic_bugs(capsys, answer, fragment):
    assert_fails(capsys, check_ensemble_average, answer, fragment)


def test_ensemble_average_reports_not_implemented(capsys):
    assert_fails(capsys, check_ensemble_average, not_implemented, "not implemented yet")


def test_ensemble_average_catches_tensors_on_the_wrong_device(capsys):
    assert_fails(capsys, check_ensemble_average, average_on_cpu, "meta device", WRONG_DEVICE_HINT)


def test_ensemble_average_hidden_catches_the_reference(capsys):
    assert_fails(
        capsys,
        check_ensemble_average,
        average_calls_reference,
        "does not call the reference",
        hidden=True,
    )


def ensemble_running_sum(logits_list):
    # another algorithm: a running sum of probabilities, no torch.stack
    total = None
    for logits in logits_list:
        p = torch.softmax(logits, dim=-1)
        total = p if total is None else total + p
    return total / len(logits_list)


def ensemble_shifts_in_place(logits_list):
    for logits in logits_list:
        logits.sub_(logits.max(dim=-1, keepdim=True).values)  # the stability trick, in place
    return (
        torch.stack(list(logits_list))
        .exp()
        .div(torch.stack(list(logits_list)).exp().sum(-1, keepdim=True))
        .mean(0)
    )


def ensemble_pops(logits_list):
    probs = []
    while logits_list:
        probs.append(logits_list.pop().softmax(-1))  # empties the caller's list
    return torch.stack(probs).mean(0)


def ensemble_returns_nothing(logits_list):
    torch.stack(list(logits_list)).softmax(-1).mean(0)


def ensemble_last_row_off(logits_list):
    out = torch.stack(list(logits_list)).softmax(-1).mean(0)
    if out.shape[0] > 512:
        out = torch.cat([out[:512], out[512:].roll(1, dims=-1)])
    return out


class TestEnsembleIssue17:
    def test_running_sum_passes(self, capsys):
        assert_passes(capsys, check_ensemble_average, ensemble_running_sum, hidden=True)

    @pytest.mark.parametrize("answer", [ensemble_shifts_in_place, ensemble_pops])
    def test_changing_the_logits_fails(self, capsys, answer):
        assert_fails(capsys, check_ensemble_average, answer, IN_PLACE + " (logits_list)")

    def test_returning_none_says_so(self, capsys):
        text = assert_fails(
            capsys, check_ensemble_average, ensemble_returns_nothing, "returned None"
        )
        assert "NoneType" not in text

    def test_error_past_512_rows_is_located(self, capsys):
        text = assert_fails(capsys, check_ensemble_average, ensemble_last_row_off, "600 samples")
        assert "at index (5" in text and "elements differ" in text

    def test_a_hint_needs_a_variant_no_other_bug_shares(self):
        from course_utils.checks._differences import unambiguous

        same = torch.ones(3)
        variants = [("bug a", same), ("bug b", same.clone()), ("bug c", torch.zeros(3))]
        assert [hint for hint, _ in unambiguous(variants)] == ["bug c"]
        assert [hint for hint, _ in unambiguous([("bug a", same), ("bug a", same)])] == [
            "bug a",
            "bug a",
        ]
