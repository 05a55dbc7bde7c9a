"""Checks for stage 01 (become one with the data): duplicates, near-duplicates, label errors.

The exercises and what each check feeds them:

- ``find_exact_duplicates(images) -> list of (i, j)``: every pair of images whose pixels are all
  equal, ``i < j``, each pair once; a group of k identical images gives k(k-1)/2 pairs. Inputs: small
  random images (values k/255) with planted pairs, a triple, and look-alikes that are *not*
  duplicates (one pixel off by 1/255, the same pixels rearranged, a difference in the last row or
  channel only).
- ``find_near_duplicates(images) -> list of (i, j)``: pairs that are the same picture up to a
  brightness change and faint noise, ``i < j``, pixel-identical pairs left out. The check calls the
  learner's function with its *own default* threshold, so the learner owns the choice of distance and
  threshold; it is graded by precision and recall (both >= ``NEAR_BAR``) against planted copies.
  Inputs: real digits from the embedded MNIST subset (the same kind of images the learner tuned on),
  including the closest pairs of *different* 1s as distractors, plus copies with brightness x0.85-1.15
  and Gaussian noise (std 0.05) and a few exact copies.
- ``rank_label_errors(logits, labels) -> LongTensor (N,)``: all indices, most suspicious label first,
  given out-of-fold logits. Inputs: synthetic logits of a "model" that is right about most examples,
  unsure about some hard ones, confidently disagrees with planted flipped labels, with a random
  per-example offset added to all logits (softmax ignores it). Graded by precision at k = number of
  flips (>= ``RANK_BAR``) and that the output is a permutation.

Devices: the two pair finders return Python lists, which needs the pixel values, so they are given
CPU tensors and not run on ``meta`` (a learner's ``.cpu()`` or ``.numpy()`` is fine there).
``rank_label_errors`` must stay in torch on the logits' device and is run on ``meta`` tensors.

Output format of the pair finders: a list (or tuple/set, or an (M, 2) tensor/array) of pairs given as
tuples or lists of two ints, in any order; each pair must be written ``(i, j)`` with ``i < j`` and
appear once. Pairs are normalised to sorted tuples of ints before comparing.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.checks._guards import WRONG_DEVICE_HINT, ReferenceCalled, tripwires
from course_utils.checks._report import CheckResult, Report
from course_utils.data import explore

NEAR_BAR = 0.9
FAINT_DISTRACTORS = 4
RANK_BAR = 0.8

Pair = tuple[int, int]
Learner = Callable[..., Any]

# --- hints (tests assert on these substrings) ----------------------------------------------------

SELF_PAIR_HINT = "compare each image only with the images after it (j > i), never with itself"
BOTH_ORDERS_HINT = "each pair once, as (i, j) with i < j"
ORDER_HINT = "write each pair smaller index first, (i, j) with i < j"
REPEATED_HINT = "a pair appears more than once in your list"
GROUP_HINT = (
    "a group of k identical images gives all k(k-1)/2 pairs; keeping one index per hash (a dict "
    "from pixels to the first or last index seen) or pairing only neighbours loses pairs"
)
TOLERANCE_HINT = (
    "a tolerance (np.isclose, allclose with atol, a distance < eps) calls images duplicates when one "
    "pixel differs by 1/255; exact duplicates have every pixel equal"
)
SUMMARY_HINT = (
    "comparing a summary of each image (sum, mean, sorted pixels, a histogram) instead of every "
    "pixel in its place"
)
PARTIAL_HINT = "comparing only part of each image (one channel, some rows); compare all pixels"
EXACT_INCLUDED_HINT = (
    "pixel-identical pairs are exact duplicates (exercise 1); leave them out of the near-duplicates"
)
L2_HINT = (
    "raw Euclidean / MSE distance: a copy of a thick digit at 0.85x brightness is farther in L2 than "
    "two different thin 1s, so no threshold separates them; centre and L2-normalise each image "
    "first (cosine distance), which a brightness factor cannot change"
)
TOO_LOOSE_HINT = "threshold too loose: it also pairs up different images that merely look alike"
TOO_TIGHT_HINT = (
    "threshold too tight (or a distance that noise moves too much): brightness-changed noisy copies "
    "fall above it; look at the histogram of nearest-neighbour distances and put the threshold in "
    "the gap, or ignore faint pixels (e.g. subtract 0.15 and clip at 0) before comparing"
)
ASCENDING_HINT = (
    "most suspicious LAST: sort descending by the error score (torch.argsort(score, "
    "descending=True)), or ascending by p(given label)"
)
MAX_CONFIDENCE_HINT = (
    "ranking by the model's confidence in its own prediction (max probability) instead of the "
    "probability it gives the *given* label; a flipped label is one the model confidently disagrees "
    "with, so its prediction is confident"
)
DISAGREEMENT_HINT = (
    "ranking by argmax(prediction) != label only: all disagreements tie, hard-but-correct examples "
    "mix with flipped labels; sort by 1 - p(given label) (or the per-example cross-entropy)"
)
RAW_LOGIT_HINT = (
    "ranking by the raw logit of the given label: logits are only defined up to a per-example "
    "constant; take the softmax probability (or the cross-entropy) of the given label"
)
SCORES_HINT = "returned scores instead of indices; return torch.argsort(scores, descending=True)"
KEEP_ON_DEVICE_HINT = (
    "your function reads values out of the tensor (.cpu(), .numpy(), .tolist(), .item(), or "
    "F.one_hot without num_classes); stay in torch on the logits' device (softmax, gather, argsort) "
    "so it runs on a GPU without copies"
)

EXACT_BANNED = [
    "course_utils.data.explore.find_exact_duplicates",
    "course_utils.data.explore.group_ids",
]
NEAR_BANNED = [
    "course_utils.data.explore.find_near_duplicates",
    "course_utils.data.explore.near_duplicate_distance",
    "course_utils.data.explore.near_duplicate_features",
    "course_utils.data.explore.nearest_neighbours",
    "course_utils.data.explore.find_leaks",
]
RANK_BANNED = [
    "course_utils.data.explore.rank_label_errors",
    "course_utils.data.explore.label_error_scores",
]
RANK_BANNED_SOURCE_ONLY = [
    "cleanlab.filter.find_label_issues",
    "cleanlab.rank.get_label_quality_scores",
]


# --- shared helpers --------------------------------------------------------------------------------


def _reference_calls(fn: Learner, banned: list[str]) -> list[str]:
    """Banned names called in ``fn``'s source, ignoring ``fn``'s own ``def`` line (the exercise's
    function has the same name as the reference)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return []
    name = getattr(fn, "__name__", "")
    text = re.sub(rf"^\s*def\s+{re.escape(name)}\s*\(", "", text, count=1, flags=re.MULTILINE)
    found = []
    for dotted in banned:
        leaf = dotted.rsplit(".", 1)[-1]
        if re.search(rf"(?<![\w]){re.escape(leaf)}\s*\(", text):
            found.append(dotted)
    return found


def _hidden_reference_case(
    report: Report,
    learner_fn: Learner,
    banned: list[str],
    run: Callable[[], Any],
    source_only: tuple[str, ...] = (),
) -> None:
    with report.case("hidden: the answer is your own code, not the course's reference"):
        called = _reference_calls(learner_fn, banned + list(source_only))
        report.expect(
            not called,
            f"your answer calls {', '.join(called)}; write it yourself (the reference is what the "
            "check compares you against)",
        )
        try:
            with tripwires(banned):
                run()
        except ReferenceCalled as called_at_run_time:
            report.fail(f"{called_at_run_time}; the check compares you against it")


def _as_pairs(report: Report, value: Any) -> list[Pair]:
    """The learner's pairs as a list of (int, int), in their orientation, duplicates kept."""
    if value is None:
        report.fail("returned None; did you forget the return statement?")
    if isinstance(value, torch.Tensor | np.ndarray):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.size == 0:
            return []
        if array.ndim != 2 or array.shape[1] != 2:
            report.fail(f"expected a list of (i, j) pairs, got an array of shape {array.shape}")
        value = array.tolist()
    if isinstance(value, dict) or not isinstance(value, list | tuple | set | frozenset):
        report.fail(f"expected a list of (i, j) pairs, got {type(value).__name__}")
    pairs = []
    for item in value:
        if isinstance(item, torch.Tensor | np.ndarray):
            item = item.tolist()
        if not isinstance(item, list | tuple) or len(item) != 2:
            report.fail(f"expected each item to be a pair (i, j), got {item!r:.60}")
        try:
            i, j = (int(v) for v in item)
        except (TypeError, ValueError):
            report.fail(f"expected pairs of integer indices, got {item!r:.60}")
        if any(isinstance(v, float) and not float(v).is_integer() for v in item):
            report.fail(f"expected pairs of integer indices, got {item!r:.60}")
        pairs.append((i, j))
    return pairs


def _check_pair_format(report: Report, pairs: list[Pair], n: int) -> set[Pair]:
    """Fail on self-pairs, both orientations, i > j, repeats or out-of-range indices; return the set."""
    selfs = [p for p in pairs if p[0] == p[1]]
    report.expect(
        not selfs, f"includes self-pairs such as {selfs[0] if selfs else ''}: {SELF_PAIR_HINT}"
    )
    bad = [p for p in pairs if not (0 <= p[0] < n and 0 <= p[1] < n)]
    report.expect(not bad, f"index out of range in {bad[0] if bad else ''} (there are {n} images)")
    as_set = set(pairs)
    both = [(i, j) for i, j in as_set if i < j and (j, i) in as_set]
    report.expect(
        not both, f"lists both {both[0] if both else ''} and its reverse: {BOTH_ORDERS_HINT}"
    )
    reversed_ = [p for p in pairs if p[0] > p[1]]
    report.expect(
        not reversed_, f"pair {reversed_[0] if reversed_ else ''} has i > j: {ORDER_HINT}"
    )
    report.expect(len(as_set) == len(pairs), REPEATED_HINT)
    return as_set


def _short(pairs: set[Pair] | list[Pair], limit: int = 4) -> str:
    items = sorted(pairs)
    text = ", ".join(str(p) for p in items[:limit])
    return text + (", ..." if len(items) > limit else "")


# --- exercise 1: exact duplicates ------------------------------------------------------------------


def _random_images(
    gen: torch.Generator, n: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), generator=gen).to(dtype) / 255.0


def _planted_groups_case(
    seed: int,
    n: int,
    shape: tuple[int, ...],
    group_sizes: list[int],
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, set[Pair], list[list[int]]]:
    """``n`` random images with groups of identical images of the given sizes, shuffled."""
    gen = torch.Generator().manual_seed(seed)
    images = _random_images(gen, n, shape, dtype)
    order = torch.randperm(n, generator=gen).tolist()
    groups, start = [], 0
    for size in group_sizes:
        members = sorted(order[start : start + size])
        start += size
        for m in members[1:]:
            images[m] = images[members[0]]
        groups.append(members)
    pairs = {(g[a], g[b]) for g in groups for a in range(len(g)) for b in range(a + 1, len(g))}
    return images, pairs, groups


def _lookalike_case(
    seed: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, set[Pair], dict[str, Pair]]:
    """Random images with one true duplicate pair and look-alike pairs that are not duplicates."""
    gen = torch.Generator().manual_seed(seed)
    images = _random_images(gen, 24, shape, dtype)
    flat = images.view(24, -1)
    lookalikes = {"one_pixel": (2, 9), "permuted": (4, 15), "last_part": (6, 20)}
    a, b = lookalikes["one_pixel"]
    flat[b] = flat[a]
    flat[b, 5] = flat[a, 5] + (1 / 255 if flat[a, 5] < 0.5 else -1 / 255)
    a, b = lookalikes["permuted"]
    flat[b] = flat[a][torch.randperm(flat.shape[1], generator=gen)]
    a, b = lookalikes["last_part"]
    images[b] = images[a]
    images[b, -1, -1] = images[a, -1, -1].flip(0)  # last row of the last channel, reversed
    if torch.equal(images[b], images[a]):
        images[b, -1, -1, 0] = 1.0 - images[a, -1, -1, 0]
    images[17] = images[11]
    return images, {(11, 17)}, lookalikes


def _describe_exact_mismatch(
    got: set[Pair], expected: set[Pair], groups: list[list[int]], lookalikes: dict[str, Pair]
) -> str:
    missing, extra = expected - got, got - expected
    plural = "pair" if len(expected) == 1 else "pairs"
    parts = [f"expected {len(expected)} {plural} [{_short(expected)}], got {len(got)}"]
    if missing:
        parts.append(f"missing {_short(missing)}")
    if extra:
        parts.append(f"pairs of images that are not identical: {_short(extra)}")
    hints = []
    big_groups = [g for g in groups if len(g) > 2]
    if missing and any(
        set(missing) & {(g[a], g[b]) for a in range(len(g)) for b in range(a + 1, len(g))}
        for g in big_groups
    ):
        hints.append(GROUP_HINT)
    if lookalikes.get("one_pixel") in extra:
        hints.append(TOLERANCE_HINT)
    if lookalikes.get("permuted") in extra:
        hints.append(SUMMARY_HINT)
    if lookalikes.get("last_part") in extra:
        hints.append(PARTIAL_HINT)
    text = "; ".join(parts)
    if hints:
        text += ". Looks like: " + " / ".join(hints)
    return text


def check_find_exact_duplicates(learner_fn: Learner, *, hidden: bool = False) -> CheckResult:
    """Grade ``find_exact_duplicates(images) -> list of (i, j)`` (see the module docstring).

    Visible cases: planted pairs and a triple among 40 random 1x8x8 images; 30 images with no
    duplicates; look-alikes that are not duplicates. Hidden: one image, two identical images, RGB
    float64 images with a group of four and two blank images, a larger set, and no calls of the
    course's reference. Images are CPU tensors; the check is not run on ``meta`` (see module docstring).
    """
    report = Report("find_exact_duplicates")

    def run_case(
        description: str,
        images: torch.Tensor,
        expected: set[Pair],
        groups: list[list[int]],
        lookalikes: dict[str, Pair] | None = None,
    ) -> None:
        with report.case(description):
            got = _check_pair_format(
                report, _as_pairs(report, learner_fn(images.clone())), len(images)
            )
            if got != expected:
                report.fail(_describe_exact_mismatch(got, expected, groups, lookalikes or {}))

    images, expected, groups = _planted_groups_case(11, 40, (1, 8, 8), [2, 2, 2, 3])
    run_case("40 images with three duplicate pairs and a triple", images, expected, groups)
    images, expected, groups = _planted_groups_case(12, 30, (1, 8, 8), [])
    run_case("30 images without duplicates (expected an empty list)", images, expected, groups)
    images, expected, lookalikes = _lookalike_case(13, (1, 8, 8))
    run_case(
        "one true pair among look-alikes (one pixel off by 1/255, same pixels rearranged, "
        "last row differs)",
        images,
        expected,
        [],
        lookalikes,
    )
    if hidden:
        gen = torch.Generator().manual_seed(14)
        run_case("hidden: a single image", _random_images(gen, 1, (1, 8, 8)), set(), [])
        pair = _random_images(gen, 1, (1, 8, 8)).repeat(2, 1, 1, 1)
        run_case("hidden: two identical images", pair, {(0, 1)}, [[0, 1]])
        images, expected, groups = _planted_groups_case(15, 50, (3, 6, 6), [4, 2], torch.float64)
        blank = [i for i in range(50) if all(i not in g for g in groups)][:2]
        images[blank] = 0.0
        expected |= {tuple(blank)}  # type: ignore[arg-type]
        run_case(
            "hidden: RGB float64 images, a group of four, two blank images",
            images,
            expected,
            [*groups, blank],
        )
        images, expected, lookalikes = _lookalike_case(16, (3, 5, 5), torch.float64)
        run_case(
            "hidden: RGB look-alikes (last channel's last row differs)",
            images,
            expected,
            [],
            lookalikes,
        )
        images, expected, groups = _planted_groups_case(17, 400, (1, 8, 8), [3, 2, 2, 2, 5])
        run_case("hidden: 400 images, five groups", images, expected, groups)
        _hidden_reference_case(
            report, learner_fn, EXACT_BANNED, lambda: learner_fn(_random_images(gen, 5, (1, 4, 4)))
        )
    return report.finish(
        "all pairs of identical images found, look-alikes rejected (pairs compared as sets of "
        "(i, j) with i < j; list order does not matter)"
    )


# --- exercise 2: near duplicates -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist_pool() -> tuple[torch.Tensor, np.ndarray, list[int]]:
    """Embedded MNIST images (N, 1, 28, 28) in [0, 1], labels, and the 1s that have a close twin."""
    from course_utils.data.embedded import mnist_5k

    raw, labels, scale, _ = mnist_5k()
    images = torch.from_numpy(raw).float().div_(scale).unsqueeze(1)
    ones = np.flatnonzero(labels == 1)
    x = images[ones].flatten(1)
    z = x - x.mean(dim=1, keepdim=True)
    z = z / z.norm(dim=1, keepdim=True)
    distance = 1.0 - z @ z.T
    distance.fill_diagonal_(float("inf"))
    closest = torch.argsort(distance.flatten())[:60].tolist()
    twins: list[int] = []
    for flat in closest:
        for k in divmod(flat, len(ones)):
            if int(ones[k]) not in twins:
                twins.append(int(ones[k]))
    return images, labels, twins[:24]


def _near_case(
    seed: int, n_other: int, n_near: int, n_exact: int, with_twins: bool = True
) -> tuple[torch.Tensor, set[Pair], set[Pair], dict[Pair, float]]:
    """Distinct real digits, ``n_near`` brightness+noise copies and ``n_exact`` exact copies, shuffled.

    With ``with_twins`` the digits include the 24 1s that have the closest look-alikes in the whole
    embedded set and ``FAINT_DISTRACTORS`` faint digits (x0.12: near each other in L2 only).
    Returns images, near pairs, exact pairs and the brightness factor of each near pair.
    """
    pool_images, labels, twins = _mnist_pool()
    rng = np.random.default_rng(seed)
    candidates = np.setdiff1d(np.arange(len(labels)), twins)
    chosen = list(rng.choice(candidates, size=n_other, replace=False))
    base_index = (twins if with_twins else []) + [int(i) for i in chosen]
    base = pool_images[base_index].clone()
    n = len(base)
    n_faint = FAINT_DISTRACTORS if with_twins else 0
    base[n - n_faint :] *= 0.12  # faint scans: close to each other in L2, not in shape
    ink = base.flatten(1).sum(dim=1)
    heavy = torch.argsort(ink, descending=True)[: n // 3].tolist()
    n_heavy = min(n_near // 2, len(heavy))
    near_src = list(rng.choice(heavy, size=n_heavy, replace=False))
    rest = [i for i in range(n - n_faint) if i not in near_src]
    near_src += list(rng.choice(rest, size=n_near - n_heavy, replace=False))
    factors = np.concatenate(
        [rng.choice([0.85, 1.15], size=n_heavy), rng.uniform(0.85, 1.15, size=n_near - n_heavy)]
    )
    gen = torch.Generator().manual_seed(seed)
    near = base[near_src] * torch.as_tensor(factors, dtype=base.dtype).view(-1, 1, 1, 1)
    near = (near + 0.05 * torch.randn(near.shape, generator=gen)).clamp(0.0, 1.0)
    unused = [i for i in range(n - n_faint) if i not in near_src]
    exact_src = list(rng.choice(unused, size=n_exact, replace=False))
    images = torch.cat([base, near, base[exact_src]])
    origin = [*range(n), *near_src, *exact_src]
    order = torch.randperm(len(images), generator=gen)
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    pos = position.tolist()

    def pair(a: int, b: int) -> Pair:
        return (min(pos[a], pos[b]), max(pos[a], pos[b]))

    near_pairs = {pair(origin[n + k], n + k) for k in range(n_near)}
    exact_pairs = {pair(origin[n + n_near + k], n + n_near + k) for k in range(n_exact)}
    factor_of = {pair(origin[n + k], n + k): float(factors[k]) for k in range(n_near)}
    return images[order], near_pairs, exact_pairs, factor_of


def _sublevel_consistent(found: set[Pair], distance: torch.Tensor, skip: set[Pair]) -> bool:
    """True if ``found`` is exactly the set of pairs below some threshold of ``distance``."""
    n = len(distance)
    rows, cols = torch.triu_indices(n, n, 1)
    values = distance[rows, cols]
    inside = torch.tensor([(int(r), int(c)) in found for r, c in zip(rows, cols, strict=True)])
    keep = torch.tensor([(int(r), int(c)) not in skip for r, c in zip(rows, cols, strict=True)])
    if not inside.any() or inside[keep].all():
        return False
    return bool(values[inside & keep].max() < values[~inside & keep].min())


def _near_diagnosis(
    images: torch.Tensor,
    found: set[Pair],
    truth: set[Pair],
    exact: set[Pair],
    precision: float,
    recall: float,
) -> str:
    x = images.flatten(1).double()
    l2 = torch.cdist(x, x)
    reference = explore.near_duplicate_distance(images.double())
    if _sublevel_consistent(found, l2, exact) and not _sublevel_consistent(found, reference, exact):
        return L2_HINT
    if precision < NEAR_BAR and recall >= NEAR_BAR:
        return TOO_LOOSE_HINT
    if recall < NEAR_BAR and precision >= NEAR_BAR:
        return TOO_TIGHT_HINT
    return "a distance that brightness or noise moves more than the gap between different digits"


def check_find_near_duplicates(learner_fn: Learner, *, hidden: bool = False) -> CheckResult:
    """Grade ``find_near_duplicates(images) -> list of (i, j)``, called with its default threshold.

    Graded by precision and recall against the planted brightness+noise copies (both >= 0.9);
    pixel-identical pairs must be left out. Visible: about 100 real digits including the closest
    pairs of different 1s, 10 near copies, 3 exact copies. Hidden: another draw with 16 near copies,
    a set with no near-duplicates at all (expects an empty list), and no calls of the course's
    reference. CPU tensors only (see the module docstring).
    """
    report = Report("find_near_duplicates")

    def run_case(
        description: str,
        seed: int,
        n_other: int,
        n_near: int,
        n_exact: int,
        with_twins: bool = True,
    ) -> None:
        images, truth, exact, _ = _near_case(seed, n_other, n_near, n_exact, with_twins)
        with report.case(description):
            found = _check_pair_format(
                report, _as_pairs(report, learner_fn(images.clone())), len(images)
            )
            included = found & exact
            report.expect(
                not included,
                f"includes {len(included)} pixel-identical pair(s) such "
                f"as {_short(included, 2)}: {EXACT_INCLUDED_HINT}",
            )
            if not truth:
                report.expect(
                    not found,
                    f"found {len(found)} pairs ({_short(found)}) among "
                    f"distinct images. Looks like: {TOO_LOOSE_HINT}",
                )
                return
            precision, recall = explore.precision_recall(found, truth)
            if precision < NEAR_BAR or recall < NEAR_BAR:
                hits = len(found & truth)
                report.fail(
                    f"precision {precision:.2f} ({hits} of {len(found)} pairs you found are planted "
                    f"copies), recall {recall:.2f} ({hits} of {len(truth)} planted copies found); "
                    f"both must be >= {NEAR_BAR}. Missed e.g. {_short(truth - found, 3) or '-'}; "
                    f"wrong e.g. {_short(found - truth, 3) or '-'}. Looks like: "
                    + _near_diagnosis(images, found, truth, exact, precision, recall)
                )

    run_case("~100 digits (look-alike 1s included), 10 near copies, 3 exact copies", 101, 76, 10, 3)
    if hidden:
        run_case("hidden: another draw, 16 near copies, 4 exact copies", 202, 90, 16, 4)
        run_case(
            "hidden: 60 distinct digits, no near-duplicates (expected an empty list)",
            303,
            60,
            0,
            2,
            with_twins=False,
        )
        images, *_ = _near_case(404, 10, 2, 1, with_twins=False)
        _hidden_reference_case(report, learner_fn, NEAR_BANNED, lambda: learner_fn(images))
    return report.finish(
        f"precision and recall >= {NEAR_BAR} on planted brightness+noise copies among look-alike "
        "digits, exact duplicates left out"
    )


# --- exercise 3: ranking label errors --------------------------------------------------------------


def _label_error_case(
    seed: int, n: int, num_classes: int, n_flip: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, set[int]]:
    """Out-of-fold-like logits and labels with ``n_flip`` planted flipped labels.

    The "model" is confident and right on most examples, unsure and often wrong on about 20% hard
    ones, and confident in the true class on flipped examples. Every row gets a random offset.
    """
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, num_classes, (n,), generator=gen)
    rows = torch.arange(n)
    logits = 0.7 * torch.randn(n, num_classes, generator=gen, dtype=torch.float64)
    hard = torch.rand(n, generator=gen) < 0.15
    confused = (truth + torch.randint(1, num_classes, (n,), generator=gen)) % num_classes
    boost = torch.where(hard, 1.5, 3.0) + torch.rand(
        n, generator=gen, dtype=torch.float64
    ) * torch.where(hard, 1.0, 3.0)
    logits[rows, truth] += boost
    logits[rows, confused] += torch.where(
        hard, 1.0 + 1.5 * torch.rand(n, generator=gen, dtype=torch.float64), 0.0
    )
    flipped = torch.randperm(n, generator=gen)[:n_flip]
    labels = truth.clone()
    labels[flipped] = (
        truth[flipped] + torch.randint(1, num_classes, (n_flip,), generator=gen)
    ) % num_classes
    logits += 8.0 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    return logits.to(dtype), labels, set(flipped.tolist())


def _rank_variants(logits: torch.Tensor, labels: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Rankings (most suspicious first) from the classic wrong scores, each with its hint."""
    p = F.softmax(logits.double(), dim=1)
    p_given = p.gather(1, labels[:, None]).squeeze(1)
    confidence = p.max(dim=1).values
    disagree = (p.argmax(dim=1) != labels).double()
    raw = logits.double().gather(1, labels[:, None]).squeeze(1)
    return [
        (ASCENDING_HINT, torch.argsort(1.0 - p_given, stable=True)),
        (MAX_CONFIDENCE_HINT, torch.argsort(confidence, stable=True)),
        (MAX_CONFIDENCE_HINT, torch.argsort(confidence, descending=True, stable=True)),
        (DISAGREEMENT_HINT, torch.argsort(disagree, descending=True, stable=True)),
        (RAW_LOGIT_HINT, torch.argsort(raw, stable=True)),
    ]


def _as_ranking(report: Report, value: Any, n: int) -> torch.Tensor:
    if value is None:
        report.fail("returned None; did you forget the return statement?")
    if isinstance(value, list | tuple | np.ndarray):
        value = torch.as_tensor(np.asarray(value))
    if not isinstance(value, torch.Tensor):
        report.fail(f"expected a tensor of indices, got {type(value).__name__}")
    if value.is_floating_point():
        report.fail(f"{SCORES_HINT} (got dtype {str(value.dtype).replace('torch.', '')})")
    value = value.detach().cpu().flatten()
    report.expect(
        len(value) == n and torch.equal(torch.sort(value).values, torch.arange(n)),
        f"expected all {n} indices 0..{n - 1}, each once (a permutation), most suspicious first; got "
        f"{len(value)} values with {len(torch.unique(value))} distinct",
    )
    return value


def check_rank_label_errors(learner_fn: Learner, *, hidden: bool = False) -> CheckResult:
    """Grade ``rank_label_errors(logits, labels) -> LongTensor (N,)``, most suspicious first.

    Graded by precision at k (k = number of planted flips, bar 0.8) on synthetic out-of-fold logits,
    that the output is a permutation of 0..N-1, and that it runs on ``meta`` tensors. Hidden: another
    draw with 1,000 examples and 3 classes in float64, a set with no flipped labels (any permutation
    passes), and no calls of the course's reference.
    """
    report = Report("rank_label_errors")

    def run_case(
        description: str,
        seed: int,
        n: int,
        num_classes: int,
        n_flip: int,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        logits, labels, flipped = _label_error_case(seed, n, num_classes, n_flip, dtype)
        with report.case(description):
            ranking = _as_ranking(report, learner_fn(logits.clone(), labels.clone()), n)
            if not flipped:
                return
            k = len(flipped)
            precision = explore.precision_at_k(ranking, flipped)
            if precision >= RANK_BAR:
                return
            message = (
                f"precision@{k} = {precision:.2f} (of your first {k} indices, "
                f"{round(precision * k)} are flipped labels), expected >= {RANK_BAR}"
            )
            top = set(ranking[:k].tolist())
            overlaps = [
                (len(top & set(v[:k].tolist())) / k, hint)
                for hint, v in _rank_variants(logits, labels)
            ]
            overlap, hint = max(overlaps, key=lambda item: item[0])
            disagree = set(torch.nonzero(logits.argmax(dim=1) != labels).flatten().tolist())
            if set(ranking[: len(disagree)].tolist()) == disagree:
                overlap, hint = 1.0, DISAGREEMENT_HINT
            if overlap >= 0.8:
                message += f". Looks like: {hint}"
            report.fail(message)

    run_case("300 examples, 10 classes, 30 flipped labels", 7, 300, 10, 30)
    with report.case("meta tensors (the device a GPU run would use)"):
        logits = torch.empty(40, 10, device="meta")
        labels = torch.empty(40, dtype=torch.long, device="meta")
        try:
            out = learner_fn(logits, labels)
        except Exception as error:
            text = str(error)
            if isinstance(error, NotImplementedError) and "meta" not in text:
                raise
            if "copy out of meta" in text or "item()" in text or "numpy" in text.lower():
                report.fail(KEEP_ON_DEVICE_HINT)
            if "device" in text or "meta" in text:
                report.fail(WRONG_DEVICE_HINT)
            raise
        report.expect(
            isinstance(out, torch.Tensor) and out.device.type == "meta",
            f"returned {type(out).__name__} "
            f"{'on ' + out.device.type if isinstance(out, torch.Tensor) else ''}, expected a "
            f"tensor on meta: {WRONG_DEVICE_HINT}",
        )
        report.expect(tuple(out.shape) == (40,), f"output shape {tuple(out.shape)}, expected (40,)")
    if hidden:
        run_case(
            "hidden: 1,000 examples, 3 classes, 50 flipped labels, float64",
            8,
            1000,
            3,
            50,
            torch.float64,
        )
        run_case("hidden: no flipped labels (any permutation is right)", 9, 50, 10, 0)
        logits, labels, _ = _label_error_case(10, 20, 4, 2)
        _hidden_reference_case(
            report,
            learner_fn,
            RANK_BANNED,
            lambda: learner_fn(logits, labels),
            source_only=tuple(RANK_BANNED_SOURCE_ONLY),
        )
    return report.finish(
        f"precision@k >= {RANK_BAR} on planted flipped labels, a permutation of all indices, runs "
        "on meta"
    )
