"""Pair lists, shared by the two pair finders of stage 01 (exact and near duplicates).

Output format of the pair finders: a list (or tuple/set, or an (M, 2) tensor/array) of pairs given as
tuples or lists of two ints, in any order; each pair must be written ``(i, j)`` with ``i < j`` and appear
once. Pairs are normalised to sorted tuples of ints before comparing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_utils.checks._report import Report

Pair = tuple[int, int]


# Hints (tests assert on these substrings).

SELF_PAIR_HINT = "compare each image only with the images after it (j > i), never with itself"


BOTH_ORDERS_HINT = "each pair once, as (i, j) with i < j"


ORDER_HINT = "write each pair smaller index first, (i, j) with i < j"


REPEATED_HINT = "a pair appears more than once in your list"


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
