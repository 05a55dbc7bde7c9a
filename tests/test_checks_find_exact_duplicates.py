"""Tests of ``check_find_exact_duplicates`` (course_utils/checks/find_exact_duplicates.py): the reference and other correct answers
pass, each classic bug fails with its hint, unfinished or device-unsafe answers fail clearly, hidden
tests catch calls of the reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from course_utils.checks import find_exact_duplicates as checks
from course_utils.checks._pairs import BOTH_ORDERS_HINT, ORDER_HINT, REPEATED_HINT, SELF_PAIR_HINT
from course_utils.data import explore
from tests.check_helpers import assert_failed, assert_fails, assert_passed, not_implemented


def exact_by_bytes(images):
    groups: dict[bytes, list[int]] = {}
    for i, image in enumerate(images.cpu().numpy()):
        groups.setdefault(image.tobytes(), []).append(i)
    return [pair for members in groups.values() for pair in itertools.combinations(members, 2)]


def exact_by_loops(images):
    n = len(images)
    return [[i, j] for i in range(n) for j in range(i + 1, n) if torch.equal(images[i], images[j])]


def exact_by_numpy_unique(images):
    flat = images.reshape(len(images), -1).numpy()
    _, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    same = np.triu(inverse[:, None] == inverse[None, :], k=1)
    return torch.as_tensor(np.argwhere(same))  # an (M, 2) tensor is accepted too


def exact_as_set_of_lists_from_numpy(images):
    pairs = exact_by_bytes(images)
    return {tuple(np.array(pair)) for pair in pairs}


def exact_as_numpy_array(images):
    return np.array(exact_by_bytes(images), dtype=np.int64).reshape(-1, 2)


def exact_with_self_pairs(images):
    n = len(images)
    return [(i, j) for i in range(n) for j in range(i, n) if torch.equal(images[i], images[j])]


def exact_both_orders(images):
    n = len(images)
    return [
        (i, j) for i in range(n) for j in range(n) if i != j and torch.equal(images[i], images[j])
    ]


def exact_reversed(images):
    return [(j, i) for i, j in exact_by_bytes(images)]


def exact_repeated(images):
    pairs = exact_by_bytes(images)
    return pairs + pairs[:1]


def exact_first_seen(images):
    seen: dict[bytes, int] = {}
    pairs = []
    for i, image in enumerate(images.numpy()):
        key = image.tobytes()
        if key in seen:
            pairs.append((seen[key], i))
        else:
            seen[key] = i
    return pairs


def exact_last_seen(images):
    seen: dict[bytes, int] = {}
    pairs = []
    for i, image in enumerate(images.numpy()):
        key = image.tobytes()
        if key in seen:
            pairs.append((seen[key], i))
        seen[key] = i
    return pairs


def exact_with_tolerance(images):
    n = len(images)
    return [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if torch.allclose(images[i], images[j], atol=1e-2)
    ]


def exact_by_sorted_pixels(images):
    keys = images.reshape(len(images), -1).sort(dim=1).values
    return exact_by_bytes(keys)


def exact_without_last_row(images):
    return exact_by_bytes(images[..., :-1, :].contiguous())


def exact_first_channel_only(images):
    return exact_by_bytes(images[:, :1].contiguous())


def exact_returns_none(images):
    exact_by_bytes(images)


def find_exact_duplicates(images):
    return explore.find_exact_duplicates(images)


def test_exact_reference_passes(capsys):
    assert_passed(checks.check_find_exact_duplicates(explore.find_exact_duplicates), capsys)
    assert_passed(checks.check_find_exact_duplicates(exact_by_bytes, hidden=True), capsys)


@pytest.mark.parametrize(
    "fn",
    [
        exact_by_bytes,
        exact_by_loops,
        exact_by_numpy_unique,
        exact_as_set_of_lists_from_numpy,
        exact_as_numpy_array,
    ],
)
def test_exact_other_correct_implementations_pass_hidden(fn, capsys):
    assert_passed(checks.check_find_exact_duplicates(fn, hidden=True), capsys)


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (exact_with_self_pairs, SELF_PAIR_HINT),
        (exact_both_orders, BOTH_ORDERS_HINT),
        (exact_reversed, ORDER_HINT),
        (exact_repeated, REPEATED_HINT),
        (exact_first_seen, checks.GROUP_HINT),
        (exact_last_seen, checks.GROUP_HINT),
        (exact_with_tolerance, checks.TOLERANCE_HINT),
        (exact_by_sorted_pixels, checks.SUMMARY_HINT),
        (exact_without_last_row, checks.PARTIAL_HINT),
        (exact_returns_none, "returned None"),
    ],
)
def test_exact_classic_bugs_fail_with_their_hint(fn, hint, capsys):
    assert_failed(checks.check_find_exact_duplicates(fn), capsys, hint)


def test_exact_first_channel_only_fails_the_hidden_rgb_case(capsys):
    assert_passed(checks.check_find_exact_duplicates(exact_first_channel_only), capsys)
    assert_failed(
        checks.check_find_exact_duplicates(exact_first_channel_only, hidden=True),
        capsys,
        "hidden: RGB",
        checks.PARTIAL_HINT,
    )


def test_exact_stub_fails_as_not_implemented(capsys):
    assert_failed(
        checks.check_find_exact_duplicates(not_implemented), capsys, "not implemented yet"
    )


def test_exact_hidden_catches_calls_of_the_reference(capsys):
    assert_passed(checks.check_find_exact_duplicates(find_exact_duplicates), capsys)
    assert_failed(
        checks.check_find_exact_duplicates(find_exact_duplicates, hidden=True),
        capsys,
        "course_utils.data.explore.find_exact_duplicates",
    )


def test_exact_hidden_tripwire_catches_a_call_hidden_from_the_source(capsys):
    def finder(images):
        return getattr(explore, "find_exact_" + "duplicates")(images)

    assert_failed(
        checks.check_find_exact_duplicates(finder, hidden=True),
        capsys,
        "hidden: the answer is your own code",
    )


def test_exact_check_output_is_the_same_on_every_call(capsys):
    first = checks.check_find_exact_duplicates(exact_first_seen).lines
    assert checks.check_find_exact_duplicates(exact_first_seen).lines == first
    capsys.readouterr()


# --- the images untouched, more than 512 of them (issue 17, classes 2, 4) ---


def exact_quantises_in_place(images):
    images.mul_(255).round_()  # integer pixel values, written into the caller's tensor
    return exact_by_bytes(images)


def exact_in_blocks_of_512_with_an_offset_bug(images):
    pairs = []
    for start in range(0, len(images), 512):
        block = images[start : start + 512]
        pairs += [(i, j) for i, j in exact_by_bytes(block)]  # forgot to add `start`
    return pairs


def test_exact_fails_images_changed_in_place(capsys):
    result = checks.check_find_exact_duplicates(exact_quantises_in_place)
    assert_failed(result, capsys, "changes its input in place (images)")


def test_exact_hidden_tries_more_than_512_images(capsys):
    assert_passed(
        checks.check_find_exact_duplicates(exact_in_blocks_of_512_with_an_offset_bug), capsys
    )
    result = checks.check_find_exact_duplicates(
        exact_in_blocks_of_512_with_an_offset_bug, hidden=True
    )
    assert_failed(result, capsys, "600 images")


def exact_on_a_non_contiguous_float64_view(images):
    # explore.find_exact_duplicates(images) is the course's version; this one hashes a transposed copy
    flipped = images.double().transpose(-1, -2)
    return exact_by_bytes(flipped.contiguous())


@pytest.mark.parametrize("hidden", [False, True])
def test_exact_passes_a_float64_transposed_answer(capsys, hidden):
    assert_passed(
        checks.check_find_exact_duplicates(exact_on_a_non_contiguous_float64_view, hidden=hidden),
        capsys,
    )


# --- side effects are told also when the pairs are wrong (issue 17, class 2) ---


def exact_reversed_and_zeroes_the_images(images):
    pairs = exact_reversed(images.clone())
    images.zero_()  # overwrites the caller's images
    return pairs


def test_exact_wrong_and_mutating_is_told_both(capsys):
    assert_fails(
        capsys,
        checks.check_find_exact_duplicates,
        exact_reversed_and_zeroes_the_images,
        "changes its input in place (images)",
        ORDER_HINT,
    )
