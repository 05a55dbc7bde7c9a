"""Check for stage 01's ``find_exact_duplicates(images) -> list of (i, j)``.

Every pair of images whose pixels are all equal, ``i < j``, each pair once; a group of k identical images
gives k(k-1)/2 pairs. Inputs: small random images (values k/255) with planted pairs, a triple, and
look-alikes that are *not* duplicates (one pixel off by 1/255, the same pixels rearranged, a difference in
the last row or channel only). The function returns a Python list, which needs the pixel values, so it is
given CPU tensors and not run on ``meta``. Output format: see ``_pairs.py``.

What the check verifies:

- value: the set of pairs equals the planted one; a mismatch names the missing and extra pairs, and a
  classic bug (self pairs, both orders, a tolerance, a summary of the image, part of the image, one index
  per group) only when the pairs found match it.
- input untouched: the images handed to the answer are compared with a copy kept aside, on every case,
  also when the pairs are wrong (both are told).
- every argument: gray and RGB, float32 and float64, 1 to 600 images (past a 512-row block, with groups
  beyond row 512; hidden), no duplicates, a group of four, blank images.
- contract: a list (tuple, set, array or (M, 2) tensor) of (i, j) with i < j, each pair once; hidden: no
  call of the reference (calls read from the syntax tree, comments and strings ignored).
"""

from __future__ import annotations

import torch

from course_utils.checks._pairs import Pair, _as_pairs, _check_pair_format, _short
from course_utils.checks._report import CheckResult, Report
from course_utils.checks._stage01 import Learner, _expect_unchanged, _hidden_reference_case

__all__ = ["check_find_exact_duplicates"]

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


EXACT_BANNED = [
    "course_utils.data.explore.find_exact_duplicates",
    "course_utils.data.explore.group_ids",
]


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
    float64 images with a group of four and two blank images, 600 images, and no calls of the
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
            given = images.clone()
            returned = learner_fn(given)
            _expect_unchanged(report, {"images": given}, {"images": images})
            got = _check_pair_format(report, _as_pairs(report, returned), len(images))
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
        images, expected, groups = _planted_groups_case(18, 600, (1, 8, 8), [3, 2, 2, 2, 5, 2, 2])
        run_case(
            "hidden: 600 images (more than 512), seven groups, some past row 512",
            images,
            expected,
            groups,
        )
        _hidden_reference_case(
            report, learner_fn, EXACT_BANNED, lambda: learner_fn(_random_images(gen, 5, (1, 4, 4)))
        )
    return report.finish(
        "all pairs of identical images found, look-alikes rejected (pairs compared as sets of "
        "(i, j) with i < j; list order does not matter)"
    )
