"""Check for stage 01's ``find_near_duplicates(images) -> list of (i, j)``.

Pairs that are the same picture up to a brightness change and faint noise, ``i < j``, pixel-identical pairs
left out. The check calls the learner's function with its *own default* threshold, so the learner owns the
choice of distance and threshold; it is graded by precision and recall (both >= ``NEAR_BAR``) against
planted copies. Inputs: real digits from the embedded MNIST subset (the same kind of images the learner
tuned on), including the closest pairs of *different* 1s as distractors, plus copies with brightness
x0.85-1.15 and Gaussian noise (std 0.05) and a few exact copies. CPU tensors only (a learner's ``.cpu()``
or ``.numpy()`` is fine). Output format: see ``_pairs.py``.

What the check verifies:

- value: precision and recall of the pairs found against the planted copies (both >= ``NEAR_BAR``),
  pixel-identical pairs excluded; a threshold named too loose or too tight only when the pairs found are
  a sub- or super-level set of the reference distance.
- input untouched: the images handed to the answer are compared with a copy kept aside, on every case,
  also when the pairs are wrong (both are told).
- every argument: the answer's own default threshold (the learner owns it); different mixes of copies,
  exact copies and look-alike distractors (hidden: larger sets).
- contract: pairs (i, j) with i < j, each once; hidden: no call of the reference.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from course_utils.checks._pairs import Pair, _as_pairs, _check_pair_format, _short
from course_utils.checks._report import CheckResult, Report
from course_utils.checks._stage01 import Learner, _expect_unchanged, _hidden_reference_case
from course_utils.data import explore

__all__ = ["check_find_near_duplicates"]

NEAR_BAR = 0.9


FAINT_DISTRACTORS = 4


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


NEAR_BANNED = [
    "course_utils.data.explore.find_near_duplicates",
    "course_utils.data.explore.near_duplicate_distance",
    "course_utils.data.explore.near_duplicate_features",
    "course_utils.data.explore.nearest_neighbours",
    "course_utils.data.explore.find_leaks",
]


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
    # A threshold is named only when the pairs found are those below some threshold of the
    # reference distance: then the distance is right and only the cut-off is off.
    on_reference = _sublevel_consistent(found, reference, exact)
    if precision < NEAR_BAR and recall >= NEAR_BAR and on_reference:
        return TOO_LOOSE_HINT
    if recall < NEAR_BAR and precision >= NEAR_BAR and (on_reference or not found - exact):
        return TOO_TIGHT_HINT
    return (
        "no threshold of a brightness- and noise-robust distance picks exactly these pairs: your "
        "distance puts some different digits closer than some planted copies; print the distances "
        "of a missed and of a wrong pair to see which"
    )


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
            given = images.clone()
            returned = learner_fn(given)
            _expect_unchanged(report, {"images": given}, {"images": images})
            found = _check_pair_format(report, _as_pairs(report, returned), len(images))
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
