"""Tests of ``check_rank_label_errors`` (course_utils/checks/rank_label_errors.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import rank_label_errors as checks
from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.data import explore
from tests.check_helpers import assert_failed, assert_fails, assert_passed, not_implemented


def rank_by_p_given(logits, labels):
    p = F.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    return torch.argsort(p)


def rank_by_cross_entropy(logits, labels):
    return torch.sort(F.cross_entropy(logits, labels, reduction="none"), descending=True).indices


def rank_by_log_softmax(logits, labels):
    log_p = torch.log_softmax(logits, dim=-1)
    return torch.argsort(log_p[torch.arange(len(labels), device=labels.device), labels])


def rank_ascending(logits, labels):
    return torch.argsort(explore.label_error_scores(logits, labels))


def rank_by_max_confidence(logits, labels):
    return torch.argsort(F.softmax(logits, dim=1).max(dim=1).values)


def rank_by_disagreement(logits, labels):
    return torch.argsort((logits.argmax(dim=1) != labels).float(), descending=True, stable=True)


def rank_by_disagreement_unstable(logits, labels):
    return torch.argsort((logits.argmax(dim=1) != labels).float(), descending=True)


def rank_by_raw_logit(logits, labels):
    return torch.argsort(logits.gather(1, labels[:, None]).squeeze(1))


def rank_returns_scores(logits, labels):
    return 1 - F.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)


def rank_returns_top_k_only(logits, labels):
    return rank_by_p_given(logits, labels)[:10]


def rank_wrong_device(logits, labels):
    one_hot = torch.zeros(logits.shape)  # on the CPU whatever the logits' device
    one_hot.scatter_(1, labels[:, None], 1.0)
    return torch.argsort((F.softmax(logits, dim=1) * one_hot).sum(dim=1))


def rank_through_numpy(logits, labels):
    p = F.softmax(logits, dim=1).detach().cpu().numpy()
    return torch.as_tensor(np.argsort(p[np.arange(len(p)), labels.cpu().numpy()]))


def rank_with_one_hot_without_num_classes(logits, labels):
    mask = F.one_hot(labels).to(logits.dtype)  # reads labels.max() to size the one-hot
    return torch.argsort((F.softmax(logits, dim=1) * mask).sum(dim=1))


def rank_label_errors(logits, labels):
    return explore.rank_label_errors(logits, labels)


def test_rank_reference_passes(capsys):
    assert_passed(checks.check_rank_label_errors(explore.rank_label_errors), capsys)


@pytest.mark.parametrize("fn", [rank_by_p_given, rank_by_cross_entropy, rank_by_log_softmax])
def test_rank_other_correct_implementations_pass_hidden(fn, capsys):
    assert_passed(checks.check_rank_label_errors(fn, hidden=True), capsys)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (rank_ascending, checks.ASCENDING_HINT),
        (rank_by_max_confidence, checks.MAX_CONFIDENCE_HINT),
        (rank_by_disagreement, checks.DISAGREEMENT_HINT),
        (rank_by_disagreement_unstable, checks.DISAGREEMENT_HINT),
        (rank_by_raw_logit, checks.RAW_LOGIT_HINT),
        (rank_returns_scores, checks.SCORES_HINT),
        (rank_returns_top_k_only, "a permutation"),
    ],
)
def test_rank_classic_bugs_fail_with_their_hint(fn, hint, capsys):
    assert_failed(checks.check_rank_label_errors(fn), capsys, hint)


def test_rank_failure_reports_precision_at_k(capsys):
    assert_failed(
        checks.check_rank_label_errors(rank_by_raw_logit), capsys, "precision@30 = 0.", ">= 0.8"
    )


def test_rank_wrong_device_fails_with_the_device_hint(capsys):
    assert_failed(checks.check_rank_label_errors(rank_wrong_device), capsys, WRONG_DEVICE_HINT)


def test_rank_through_numpy_fails_on_meta_with_the_keep_on_device_hint(capsys):
    out = assert_failed(
        checks.check_rank_label_errors(rank_through_numpy), capsys, checks.KEEP_ON_DEVICE_HINT
    )
    assert "not implemented yet" not in out
    assert out.count("FAIL") == 1  # the CPU cases pass; only the meta case fails


def test_rank_one_hot_without_num_classes_fails_on_meta_with_the_keep_on_device_hint(capsys):
    assert_failed(
        checks.check_rank_label_errors(rank_with_one_hot_without_num_classes),
        capsys,
        checks.KEEP_ON_DEVICE_HINT,
    )


def test_rank_stub_fails_as_not_implemented(capsys):
    assert_failed(checks.check_rank_label_errors(not_implemented), capsys, "not implemented yet")


def test_rank_hidden_catches_calls_of_the_reference(capsys):
    assert_passed(checks.check_rank_label_errors(rank_label_errors), capsys)
    assert_failed(
        checks.check_rank_label_errors(rank_label_errors, hidden=True),
        capsys,
        "course_utils.data.explore.rank_label_errors",
    )


def test_rank_hidden_tripwire_catches_the_score_function(capsys):
    def ranking(logits, labels):
        scores = getattr(explore, "label_error_" + "scores")  # invisible to the source scan
        return torch.argsort(scores(logits, labels), descending=True)

    assert_passed(checks.check_rank_label_errors(ranking), capsys)
    assert_failed(
        checks.check_rank_label_errors(ranking, hidden=True), capsys, "label_error_scores"
    )


# --- the logits and labels untouched, more than 512 rows, None (issue 17, classes 2, 4, 7) ---


def rank_shifts_logits_in_place(logits, labels):
    logits -= logits.max(dim=1, keepdim=True).values  # "for stability", in the caller's tensor
    return rank_by_cross_entropy(logits, labels)


def rank_with_a_view(logits, labels):
    n, c = logits.shape
    flat = logits.view(-1)  # view fails on a non-contiguous tensor; reshape would copy
    given = flat[torch.arange(n, device=labels.device) * c + labels]
    return torch.argsort(given - torch.logsumexp(logits, dim=1))


def rank_returns_nothing(logits, labels):
    rank_by_cross_entropy(logits, labels)


def test_rank_fails_logits_changed_in_place(capsys):
    result = checks.check_rank_label_errors(rank_shifts_logits_in_place)
    assert_failed(result, capsys, "changes its input in place (logits)")


def test_rank_tries_non_contiguous_logits_past_512_rows(capsys):
    result = checks.check_rank_label_errors(rank_with_a_view)
    assert_failed(result, capsys, "600 examples (more than 512)", "non-contiguous", "view")


def test_rank_names_a_missing_return_without_a_device_hint(capsys):
    out = assert_failed(
        checks.check_rank_label_errors(rank_returns_nothing), capsys, "return statement"
    )
    assert "without device=" not in out


def rank_float64_with_a_comment(logits, labels):
    # explore.rank_label_errors(logits, labels) would do it; cleanlab's find_label_issues too
    log_p = torch.log_softmax(logits.double(), dim=1)
    return torch.argsort(log_p.gather(1, labels[:, None]).squeeze(1))


@pytest.mark.parametrize("hidden", [False, True])
def test_rank_passes_a_float64_answer_that_names_the_library_in_a_comment(capsys, hidden):
    assert_passed(
        checks.check_rank_label_errors(rank_float64_with_a_comment, hidden=hidden), capsys
    )


# --- side effects are told also when the ranking is wrong (issue 17, class 2) ---


def rank_ascending_and_shifts_logits(logits, labels):
    ranking = rank_ascending(logits.clone(), labels)
    logits.sub_(logits.max(dim=1, keepdim=True).values)  # "stabilises" the caller's logits
    return ranking


def test_rank_wrong_and_mutating_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_rank_label_errors,
        rank_ascending_and_shifts_logits,
        "changes its input in place (logits)",
        checks.ASCENDING_HINT,
    )
