"""Tests of the stage-01 checks: the reference passes, classic bugs fail with their hint, other correct
implementations pass, stubs and device bugs fail clearly, hidden tests catch calls of the reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import data as checks
from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.data import explore


def assert_passed(result, capsys) -> None:
    out, err = capsys.readouterr()
    assert result.passed, out
    assert out.startswith(f"PASS {result.name}:") and out.count("\n") == 1
    assert err == ""


def assert_failed(result, capsys, *fragments: str) -> str:
    out, err = capsys.readouterr()
    assert not result.passed
    assert err == ""
    assert all(line.startswith(f"FAIL {result.name}:") for line in out.strip().splitlines())
    for fragment in fragments:
        assert fragment in out, out
    with pytest.raises(AssertionError):
        result.require()
    return out


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# --- exercise 1: exact duplicates ------------------------------------------------------------------


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
        (exact_with_self_pairs, checks.SELF_PAIR_HINT),
        (exact_both_orders, checks.BOTH_ORDERS_HINT),
        (exact_reversed, checks.ORDER_HINT),
        (exact_repeated, checks.REPEATED_HINT),
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


# --- exercise 2: near duplicates -------------------------------------------------------------------


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
        (near_with_self_pairs, checks.SELF_PAIR_HINT),
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


# --- exercise 3: ranking label errors --------------------------------------------------------------


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
