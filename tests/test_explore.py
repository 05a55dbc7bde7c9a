"""Tests of course_utils.data.explore: the duplicate, leak and label-error finders and their helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_utils.data import corrupted_copy, load_data
from course_utils.data import explore as ex

SETTINGS = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def data():
    return load_data("mnist_5k")


@pytest.fixture(scope="module")
def corrupted(data):
    return corrupted_copy(data, seed=0)


def random_images(seed: int, n: int, shape=(1, 6, 6), dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, *shape), generator=gen).to(dtype) / 255.0).contiguous()


def brute_force_exact(images: torch.Tensor) -> list[tuple[int, int]]:
    n = len(images)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if torch.equal(images[i], images[j])]


def oracle_distance(a: np.ndarray, b: np.ndarray, floor: float = ex.NOISE_FLOOR) -> np.ndarray:
    """1 - Pearson correlation of the floored pixels, in float64 NumPy."""
    ta = np.maximum(a.reshape(len(a), -1).astype(np.float64) - floor, 0.0)
    tb = np.maximum(b.reshape(len(b), -1).astype(np.float64) - floor, 0.0)
    ca = ta - ta.mean(axis=1, keepdims=True)
    cb = tb - tb.mean(axis=1, keepdims=True)
    ca /= np.maximum(np.linalg.norm(ca, axis=1, keepdims=True), 1e-12)
    cb /= np.maximum(np.linalg.norm(cb, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - ca @ cb.T, 0.0, None)


# --- the planted problems of corrupted_copy are recovered ------------------------------------------


def test_exact_duplicates_of_corrupted_copy_recovered_with_precision_and_recall_one(corrupted):
    found = ex.find_exact_duplicates(corrupted.images)
    assert found == corrupted.key.exact_pairs
    assert ex.precision_recall(found, corrupted.key.exact_pairs) == (1.0, 1.0)


@pytest.mark.parametrize("seed", [0, 3])
def test_near_duplicates_of_corrupted_copy_recovered_with_precision_and_recall_one(data, seed):
    corrupted = corrupted_copy(data, seed=seed)
    found = ex.find_near_duplicates(corrupted.images)
    assert ex.precision_recall(found, corrupted.key.near_pairs) == (1.0, 1.0)
    assert not set(found) & set(corrupted.key.exact_pairs)


def test_near_duplicate_threshold_sits_in_the_gap_on_mnist_5k(corrupted):
    distance = ex.near_duplicate_distance(corrupted.images.double())
    planted = torch.tensor([distance[i, j] for i, j in corrupted.key.near_pairs])
    assert planted.max() < ex.NEAR_THRESHOLD / 2
    others = distance.clone().fill_diagonal_(float("inf"))
    for i, j in corrupted.key.near_pairs + corrupted.key.exact_pairs:
        others[i, j] = others[j, i] = float("inf")
    assert others.min() > ex.NEAR_THRESHOLD * 1.4


def test_leaks_of_corrupted_copy_recovered_with_precision_and_recall_one(data, corrupted):
    found = ex.find_leaks(corrupted.images, data.test.images)
    assert ex.precision_recall(found, corrupted.key.leaked) == (1.0, 1.0)
    distances, indices = ex.nearest_neighbours(data.test.images, corrupted.images, k=1)
    leaked_tests = {j for _, j in corrupted.key.leaked}
    close = set(torch.nonzero(distances[:, 0] < ex.NEAR_THRESHOLD).flatten().tolist())
    assert close == leaked_tests
    for i, j in corrupted.key.leaked:
        assert int(indices[j, 0]) == i


def test_raw_l2_cannot_separate_near_duplicates_from_different_digits(corrupted):
    x = corrupted.images.flatten(1).double()
    l2 = torch.cdist(x, x).fill_diagonal_(float("inf"))
    planted = max(float(l2[i, j]) for i, j in corrupted.key.near_pairs)
    for i, j in corrupted.key.near_pairs + corrupted.key.exact_pairs:
        l2[i, j] = l2[j, i] = float("inf")
    assert float(l2.min()) < planted  # the docstring's claim: no L2 threshold works


# --- exact duplicates --------------------------------------------------------------------------------


@SETTINGS
@given(
    n=st.integers(1, 25),
    groups=st.lists(st.integers(2, 4), max_size=4),
    channels=st.sampled_from([1, 3]),
    seed=st.integers(0, 10_000),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_exact_duplicates_match_brute_force(n, groups, channels, seed, dtype):
    images = random_images(seed, n + sum(groups), (channels, 4, 4), dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    order = torch.randperm(len(images), generator=gen).tolist()
    start = 0
    for size in groups:
        members = order[start : start + size]
        images[members] = images[members[0]].clone()
        start += size
    assert ex.find_exact_duplicates(images) == brute_force_exact(images)


def test_exact_duplicates_of_a_triple_are_its_three_pairs():
    images = random_images(0, 6)
    images[[1, 3, 5]] = images[1].clone()
    assert ex.find_exact_duplicates(images) == [(1, 3), (1, 5), (3, 5)]


def test_exact_duplicates_ignore_images_one_pixel_apart():
    images = random_images(1, 4)
    images[2] = images[0]
    images[2, 0, 0, 0] += 1 / 255
    assert ex.find_exact_duplicates(images) == []


def test_exact_duplicates_of_empty_and_single_sets_are_empty():
    assert ex.find_exact_duplicates(random_images(0, 1)) == []
    assert ex.find_exact_duplicates(torch.zeros(0, 1, 4, 4)) == []


def test_group_ids_equal_exactly_for_equal_images():
    images = random_images(2, 10)
    images[7] = images[2]
    ids = ex.group_ids(images)
    same = ids[:, None] == ids[None, :]
    oracle = torch.tensor([[torch.equal(a, b) for b in images] for a in images])
    assert torch.equal(same, oracle)


# --- near duplicates ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_near_duplicate_distance_matches_numpy_oracle(data, dtype):
    a = data.train.images[:40].to(dtype)
    b = data.val.images[:30].to(dtype)
    expected = oracle_distance(a.numpy(), b.numpy())
    got = ex.near_duplicate_distance(a, b).double().numpy()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(got, expected, atol=tol)


def test_near_duplicate_distance_ignores_brightness_and_offset_without_floor():
    images = random_images(3, 5).double()
    scaled = 0.7 * images + 0.2
    distance = ex.near_duplicate_distance(images, scaled, noise_floor=0.0)
    assert torch.allclose(distance.diagonal(), torch.zeros(5, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_brightness_changed_noisy_digits_stay_below_threshold(data, factor):
    images = data.train.images[::7]
    gen = torch.Generator().manual_seed(0)
    copies = (images * factor + 0.05 * torch.randn(images.shape, generator=gen)).clamp(0, 1)
    distance = ex.near_duplicate_distance(images, copies).diagonal()
    assert float(distance.max()) < ex.NEAR_THRESHOLD


def test_constant_image_is_at_distance_one_from_everything():
    images = torch.cat([torch.zeros(1, 1, 6, 6), random_images(4, 3)])
    distance = ex.near_duplicate_distance(images)
    assert torch.allclose(distance[0, 1:], torch.ones(3))


@SETTINGS
@given(
    n=st.integers(2, 30),
    n_copies=st.integers(0, 5),
    threshold=st.floats(0.0, 0.5),
    block_size=st.integers(1, 40),
    seed=st.integers(0, 10_000),
)
def test_near_duplicates_match_brute_force_for_any_block_size(
    n, n_copies, threshold, block_size, seed
):
    images = random_images(seed, n, (1, 5, 5)).double()
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (n_copies,), generator=gen)
    copies = (images[src] * 0.9 + 0.02 * torch.rand(images[src].shape, generator=gen)).clamp(0, 1)
    images = torch.cat([images, copies, images[src[:1]]])  # plus one exact duplicate
    d = oracle_distance(images.numpy(), images.numpy())
    same = [[torch.equal(a, b) for b in images] for a in images]
    expected = [
        (i, j)
        for i, j in itertools.combinations(range(len(images)), 2)
        if d[i, j] < threshold and not same[i][j] and abs(d[i, j] - threshold) > 1e-9
    ]
    found = ex.find_near_duplicates(images, threshold=threshold, block_size=block_size)
    borderline = {
        (i, j)
        for i, j in itertools.combinations(range(len(images)), 2)
        if abs(d[i, j] - threshold) <= 1e-9
    }
    assert set(found) - borderline == set(expected)
    assert found == sorted(found)


def test_exclude_exact_false_keeps_pixel_identical_pairs():
    images = random_images(5, 4)
    images[3] = images[1]
    assert ex.find_near_duplicates(images, exclude_exact=False) == [(1, 3)]
    assert ex.find_near_duplicates(images) == []


@SETTINGS
@given(
    nq=st.integers(1, 12),
    nr=st.integers(1, 15),
    k=st.integers(1, 4),
    block_size=st.integers(1, 8),
    seed=st.integers(0, 10_000),
)
def test_nearest_neighbours_match_brute_force(nq, nr, k, block_size, seed):
    k = min(k, nr)
    queries = random_images(seed, nq).double()
    reference = random_images(seed + 1, nr).double()
    distances, indices = ex.nearest_neighbours(queries, reference, k=k, block_size=block_size)
    d = oracle_distance(queries.numpy(), reference.numpy())
    expected = np.sort(d, axis=1)[:, :k]
    np.testing.assert_allclose(distances.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(d, indices.numpy(), axis=1), expected, atol=1e-12)


@SETTINGS
@given(
    n_train=st.integers(1, 15),
    n_test=st.integers(1, 15),
    threshold=st.floats(0.0, 0.6),
    seed=st.integers(0, 10_000),
)
def test_find_leaks_match_brute_force(n_train, n_test, threshold, seed):
    train = random_images(seed, n_train).double()
    test = random_images(seed + 7, n_test).double()
    train[0] = test[-1]
    d = oracle_distance(train.numpy(), test.numpy())
    expected = {
        (i, j)
        for i in range(n_train)
        for j in range(n_test)
        if d[i, j] < threshold and abs(d[i, j] - threshold) > 1e-9
    }
    borderline = {
        (i, j) for i in range(n_train) for j in range(n_test) if abs(d[i, j] - threshold) <= 1e-9
    }
    found = ex.find_leaks(train, test, threshold=threshold, block_size=4)
    assert set(found) - borderline == expected
    if threshold > 1e-6:
        assert (0, n_test - 1) in found


# --- label errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_label_error_scores_match_one_minus_exp_of_minus_cross_entropy(dtype):
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(50, 7, generator=gen)).to(dtype)
    labels = torch.randint(0, 7, (50,), generator=gen)
    expected = 1.0 - torch.exp(-F.cross_entropy(logits.double(), labels, reduction="none"))
    got = ex.label_error_scores(logits, labels)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.allclose(got.double(), expected, atol=tol)


@SETTINGS
@given(n=st.integers(1, 40), c=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_rank_label_errors_is_a_permutation_sorted_by_descending_score(n, c, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=gen)
    ranking = ex.rank_label_errors(logits, labels)
    assert torch.equal(torch.sort(ranking).values, torch.arange(n))
    scores = ex.label_error_scores(logits, labels)[ranking]
    assert bool((scores[:-1] >= scores[1:]).all())


def test_label_error_scores_pass_gradcheck_in_float64():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (6,), generator=gen)
    assert torch.autograd.gradcheck(lambda z: ex.label_error_scores(z, labels), (logits,))


def test_rank_label_errors_breaks_ties_by_index():
    logits = torch.zeros(5, 3)
    labels = torch.tensor([0, 1, 2, 0, 1])
    assert ex.rank_label_errors(logits, labels).tolist() == [0, 1, 2, 3, 4]


def test_label_error_scores_under_bfloat16_autocast_stay_close():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(30, 10, generator=gen)
    labels = torch.randint(0, 10, (30,), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ex.label_error_scores(logits.bfloat16(), labels)
    assert got.dtype == torch.float32
    assert torch.allclose(got, ex.label_error_scores(logits, labels), atol=2e-2)


def test_near_duplicate_distance_under_bfloat16_autocast_stays_close(data):
    images = data.train.images[:20]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ex.near_duplicate_distance(images)
    assert torch.allclose(got.float(), ex.near_duplicate_distance(images), atol=3e-2)


class _Spy(nn.Module):
    """Remembers the ids (pixel 0) of the images it trains on and is asked to predict."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.trained: set[int] = set()
        self.predicted: set[int] = set()
        log.append(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = {int(v) for v in x[:, 0, 0, 0].tolist()}
        (self.trained if self.training else self.predicted).update(ids)
        return self.weight.expand(len(x), 3) + x[:, 0, 0, :1]


def test_cross_validated_logits_are_out_of_fold():
    n = 30
    images = torch.zeros(n, 1, 2, 2)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    labels = torch.arange(n) % 3
    models: list[_Spy] = []
    logits = ex.cross_validated_logits(
        images, labels, lambda: _Spy(models), k=5, epochs=1, batch_size=8
    )
    assert logits.shape == (n, 3)
    assert len(models) == 5
    assert set().union(*(m.predicted for m in models)) == set(range(n))
    for model in models:
        assert model.predicted and not model.trained & model.predicted
        assert model.trained | model.predicted == set(range(n))


def test_cross_validated_logits_of_a_quick_model_beat_chance(data):
    images, labels = data.train.images[::12], data.train.labels[::12]

    def make():
        return ex.quick_classifier(data.image_shape, data.num_classes, hidden=32)

    logits = ex.cross_validated_logits(images, labels, make, k=3, epochs=8, lr=5e-3)
    assert float((logits.argmax(dim=1) == labels).float().mean()) > 0.5


def test_cross_validated_logits_repeat_with_the_same_seed(data):
    images, labels = data.train.images[::60], data.train.labels[::60]

    def make():
        return ex.quick_classifier(data.image_shape, data.num_classes, hidden=8)

    first = ex.cross_validated_logits(images, labels, make, k=2, epochs=1)
    assert torch.equal(first, ex.cross_validated_logits(images, labels, make, k=2, epochs=1))
    assert not torch.equal(
        first, ex.cross_validated_logits(images, labels, make, k=2, epochs=1, seed=1)
    )


# --- metrics and summaries ------------------------------------------------------------------------


def test_precision_recall_counts_hits_and_treats_lists_like_tuples():
    assert ex.precision_recall([(1, 2), [3, 4], (5, 6)], [(1, 2), (3, 4)]) == (2 / 3, 1.0)
    assert ex.precision_recall([], [(1, 2)]) == (1.0, 0.0)
    assert ex.precision_recall([3], []) == (0.0, 1.0)


@SETTINGS
@given(
    found=st.sets(st.integers(0, 30), max_size=20),
    truth=st.sets(st.integers(0, 30), min_size=1, max_size=20),
)
def test_precision_recall_match_set_formulas(found, truth):
    precision, recall = ex.precision_recall(found, truth)
    hits = len(found & truth)
    assert recall == hits / len(truth)
    assert precision == (hits / len(found) if found else 1.0)


def test_precision_at_k_uses_the_first_k_of_the_ranking():
    ranking = torch.tensor([4, 2, 9, 1, 0])
    assert ex.precision_at_k(ranking, {2, 1}) == 0.5
    assert ex.precision_at_k([4, 2, 9], {4, 9}, k=3) == pytest.approx(2 / 3)


def test_class_balance_matches_bincount():
    labels = torch.tensor([0, 3, 3, 1, 0, 3])
    assert torch.equal(ex.class_balance(labels, 5), torch.bincount(labels, minlength=5))


def test_class_balance_of_mnist_5k_training_split_is_350_per_class(data):
    assert ex.class_balance(data.train.labels, data.num_classes).tolist() == [350] * 10


def test_total_ink_is_the_pixel_sum(data):
    images = data.train.images[:10]
    assert torch.allclose(ex.total_ink(images), images.sum(dim=(1, 2, 3)))


def test_outlier_scores_with_labels_are_within_class_z_scores(data):
    images, labels = data.train.images[::10], data.train.labels[::10]
    scores = ex.outlier_scores(images, labels, data.num_classes).double()
    for c in range(data.num_classes):
        members = scores[labels == c]
        assert abs(float(members.mean())) < 1e-5
        assert float(members.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)


def test_outlier_scores_put_a_mislabelled_image_first(data):
    ones = data.train.images[data.train.labels == 1][:40]
    zero = data.train.images[data.train.labels == 0][:1]
    images = torch.cat([ones, zero])
    labels = torch.ones(len(images), dtype=torch.long)
    assert int(ex.outlier_scores(images, labels).argmax()) == len(images) - 1


def test_outlier_scores_without_labels_are_absolute_ink_z_scores(data):
    images = data.train.images[:100]
    ink = images.sum(dim=(1, 2, 3))
    expected = ((ink - ink.mean()) / ink.std()).abs()
    assert torch.allclose(ex.outlier_scores(images), expected, atol=1e-5)


# --- meta device ---------------------------------------------------------------------------------


def test_tensor_functions_run_on_meta():
    images = torch.empty(8, 1, 6, 6, device="meta")
    labels = torch.empty(8, dtype=torch.long, device="meta")
    logits = torch.empty(8, 4, device="meta")
    assert ex.near_duplicate_distance(images).shape == (8, 8)
    assert ex.near_duplicate_distance(images).device.type == "meta"
    distances, indices = ex.nearest_neighbours(images[:3], images, k=2)
    assert distances.shape == indices.shape == (3, 2)
    assert indices.device.type == "meta"
    assert ex.label_error_scores(logits, labels).device.type == "meta"
    ranking = ex.rank_label_errors(logits, labels)
    assert ranking.shape == (8,) and ranking.device.type == "meta"
    assert ex.class_balance(labels, 4).shape == (4,)
    assert ex.total_ink(images).device.type == "meta"
    assert ex.outlier_scores(images, labels, 4).shape == (8,)
    assert ex.outlier_scores(images).device.type == "meta"


# --- bad inputs ----------------------------------------------------------------------------------


def test_bad_inputs_raise_value_errors_that_say_what_was_expected():
    images = random_images(0, 4)
    with pytest.raises(ValueError, match="threshold must be a cosine distance in"):
        ex.find_near_duplicates(images, threshold=3.0)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        ex.find_near_duplicates(images, block_size=0)
    with pytest.raises(ValueError, match="noise_floor must be >= 0"):
        ex.near_duplicate_distance(images, noise_floor=-0.1)
    with pytest.raises(ValueError, match=r"k must be in \[1, len\(reference\)=4\], got 5"):
        ex.nearest_neighbours(images, images, k=5)
    with pytest.raises(ValueError, match="images must be a torch.Tensor, got list"):
        ex.find_exact_duplicates([[0.0]])
    with pytest.raises(ValueError, match=r"logits must be a tensor of shape \(N, K\), got \(4,\)"):
        ex.label_error_scores(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \(4,\), got \(3,\)"):
        ex.rank_label_errors(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be int64 class indices"):
        ex.label_error_scores(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        ex.class_balance(torch.zeros(3, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        ex.cross_validated_logits(images, torch.zeros(4, dtype=torch.long), nn.Flatten, epochs=0)
    with pytest.raises(ValueError, match=r"k must be an integer >= 2"):
        ex.cross_validated_logits(images, torch.zeros(4, dtype=torch.long), nn.Flatten, k=1)
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        ex.precision_at_k([1, 2], [], k=None)


# --- stage-01 helpers: sampling per class, nearest other image -----------------------------------


def test_sample_per_class_draws_each_class_in_order_without_repeats():
    labels = torch.tensor([0, 1, 2] * 10 + [2] * 5)
    picked = ex.sample_per_class(labels, 3, per_class=4, seed=1)
    assert picked.shape == (12,)
    assert labels[picked].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(set(picked.tolist())) == 12
    assert torch.equal(picked, ex.sample_per_class(labels, 3, per_class=4, seed=1))
    assert len(ex.sample_per_class(labels, 3, per_class=50)) == len(labels)  # fewer if fewer


@pytest.mark.parametrize("metric", ["l2", "recipe"])
def test_nearest_other_distance_matches_brute_force(metric):
    images = random_images(3, 12)
    images[5] = images[2] * 0.9  # a near copy
    rows = [0, 2, 5, 11]
    got = ex.nearest_other_distance(images, rows, metric)
    full = (
        torch.cdist(images.flatten(1), images.flatten(1))
        if metric == "l2"
        else ex.near_duplicate_distance(images)
    )
    expected = [min(float(full[r, j]) for j in range(12) if j != r) for r in rows]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="metric"):
        ex.nearest_other_distance(images, rows, "cosine")
