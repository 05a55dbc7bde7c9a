"""Tests of ``check_find_near_duplicates`` (course_utils/checks/find_near_duplicates.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.checks import find_near_duplicates as checks
from course_utils.checks._pairs import SELF_PAIR_HINT
from course_utils.data import explore
from tests.check_helpers import assert_failed, assert_passed, not_implemented
from tests.test_checks_find_exact_duplicates import exact_by_bytes


def _pairs_below(distance: torch.Tensor, threshold: float, images: torch.Tensor, exclude=True):
    n = len(images)
    same = explore.group_ids(images)
    rows, cols = torch.nonzero(torch.triu(distance < threshold, diagonal=1), as_tuple=True)
    return [
        (int(i), int(j))
        for i, j in zip(rows, cols, strict=True)
        if not (exclude and same[i] == same[j]) and int(i) < n
    ]


def near_centred_cosine(images, threshold=0.015):
    x = images.flatten(1).double()
    z = x - x.mean(dim=1, keepdim=True)
    z = z / z.norm(dim=1, keepdim=True)
    return _pairs_below(1 - z @ z.T, threshold, images)


def near_floor_then_correlation_loops(images, threshold=0.012):
    x = (images.flatten(1).numpy().astype(np.float64) - 0.15).clip(0, None)
    corr = np.corrcoef(x)
    n = len(x)
    return [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if 1 - corr[i, j] < threshold and not np.array_equal(images[i].numpy(), images[j].numpy())
    ]


def near_raw_l2(images, threshold=2.0):
    x = images.flatten(1).double()
    return _pairs_below(torch.cdist(x, x), threshold, images)


def near_mse(images, threshold=0.006):
    x = images.flatten(1).double()
    return _pairs_below(torch.cdist(x, x) ** 2 / x.shape[1], threshold, images)


def near_too_loose(images, threshold=0.03):
    return explore.find_near_duplicates(images, threshold)


def near_too_tight(images, threshold=0.003):
    return explore.find_near_duplicates(images, threshold)


def near_with_exact(images, threshold=0.015):
    return explore.find_near_duplicates(images, threshold, exclude_exact=False)


def near_with_self_pairs(images, threshold=0.015):
    return [(i, i) for i in range(2)] + explore.find_near_duplicates(images, threshold)


def find_near_duplicates(images, threshold=0.015):
    return explore.find_near_duplicates(images, threshold)


def test_near_reference_passes(capsys):
    assert_passed(checks.check_find_near_duplicates(explore.find_near_duplicates), capsys)


@pytest.mark.parametrize("fn", [near_centred_cosine, near_floor_then_correlation_loops])
def test_near_other_correct_implementations_pass_hidden(fn, capsys):
    assert_passed(checks.check_find_near_duplicates(fn, hidden=True), capsys)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (near_raw_l2, checks.L2_HINT),
        (near_mse, checks.L2_HINT),
        (near_too_loose, checks.TOO_LOOSE_HINT),
        (near_too_tight, checks.TOO_TIGHT_HINT),
        (near_with_exact, checks.EXACT_INCLUDED_HINT),
        (near_with_self_pairs, SELF_PAIR_HINT),
    ],
)
def test_near_classic_bugs_fail_with_their_hint(fn, hint, capsys):
    assert_failed(checks.check_find_near_duplicates(fn), capsys, hint)


def test_near_failure_reports_precision_and_recall(capsys):
    out = assert_failed(checks.check_find_near_duplicates(near_raw_l2), capsys, "precision 0.")
    assert "recall 1.00" in out and "must be >= 0.9" in out


def test_near_loose_threshold_fails_the_hidden_no_duplicates_case(capsys):
    loose = lambda images: explore.find_near_duplicates(images, 0.2)  # noqa: E731
    assert_failed(
        checks.check_find_near_duplicates(loose, hidden=True), capsys, "no near-duplicates"
    )


def test_near_stub_fails_as_not_implemented(capsys):
    assert_failed(checks.check_find_near_duplicates(not_implemented), capsys, "not implemented yet")


def test_near_hidden_catches_calls_of_the_reference(capsys):
    assert_failed(
        checks.check_find_near_duplicates(find_near_duplicates, hidden=True),
        capsys,
        "course_utils.data.explore.find_near_duplicates",
    )


def test_near_hidden_allows_calling_your_own_exact_duplicate_finder(capsys):
    def find_near_duplicates(images, threshold=0.015):
        exact = set(exact_by_bytes(images))
        return [p for p in near_centred_cosine(images, threshold) if p not in exact]

    assert_passed(checks.check_find_near_duplicates(find_near_duplicates, hidden=True), capsys)


# --- the images untouched (issue 17, class 2) ---


def near_normalises_in_place(images, threshold=0.015):
    flat = images.view(len(images), -1)
    flat.sub_(flat.mean(1, keepdim=True))  # centred in the caller's tensor
    return find_near_duplicates(images, threshold)


def test_near_fails_images_changed_in_place(capsys):
    result = checks.check_find_near_duplicates(near_normalises_in_place)
    assert_failed(result, capsys, "changes its input in place (images)")


def near_on_pooled_images(images, threshold=0.015):
    small = torch.nn.functional.avg_pool2d(images.float(), 4)  # 7x7: different 1s look alike
    return find_near_duplicates(small, threshold)


def test_near_names_a_threshold_only_when_the_distance_is_right(capsys):
    result = checks.check_find_near_duplicates(near_on_pooled_images)
    out = assert_failed(result, capsys, "precision 0.20", "no threshold of a")
    assert "threshold too" not in out, out
