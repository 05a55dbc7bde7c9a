"""Check for stage 01's ``rank_label_errors(logits, labels) -> LongTensor (N,)``.

All indices, most suspicious label first, given out-of-fold logits. Inputs: synthetic logits of a "model"
that is right about most examples, unsure about some hard ones, confidently disagrees with planted flipped
labels, with a random per-example offset added to all logits (softmax ignores it). Graded by precision at
k = number of flips (>= ``RANK_BAR``) and that the output is a permutation. The function must stay in torch
on the logits' device and is run on ``meta`` tensors.

What the check verifies:

- value: precision at k (k = planted flips) >= ``RANK_BAR``; a classic bug (ascending order, max
  confidence, disagreement only, raw logits) named only when the answer's top k overlap it by 80%.
- input untouched: logits and labels compared with copies kept aside (no in-place shift, no
  requires_grad), on every case, also when the ranking is wrong (both are told).
- every argument: 300 and 600 examples (past a 512-row block), 10 and 5 classes, column-major
  (non-contiguous) logits; hidden: 1,000 examples in float64, no flips; the meta device.
- contract: a permutation of all N indices as a tensor on the logits' device (None is named as a
  missing return, not a device problem); hidden: no call of the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.checks._guards import WRONG_DEVICE_HINT
from course_utils.checks._report import CheckResult, Report, describe
from course_utils.checks._stage01 import Learner, _expect_unchanged, _hidden_reference_case
from course_utils.data import explore

__all__ = ["check_rank_label_errors"]

RANK_BAR = 0.8


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


RANK_BANNED = [
    "course_utils.data.explore.rank_label_errors",
    "course_utils.data.explore.label_error_scores",
]


RANK_BANNED_SOURCE_ONLY = [
    "cleanlab.filter.find_label_issues",
    "cleanlab.rank.get_label_quality_scores",
]


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
        contiguous: bool = True,
    ) -> None:
        logits, labels, flipped = _label_error_case(seed, n, num_classes, n_flip, dtype)
        with report.case(description):
            given = {"logits": logits.clone(), "labels": labels.clone()}
            if not contiguous:
                given["logits"] = logits.t().contiguous().t()  # same values, column-major
            returned = learner_fn(given["logits"], given["labels"])
            _expect_unchanged(report, given, {"logits": logits, "labels": labels})
            ranking = _as_ranking(report, returned, n)
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
    run_case(
        "600 examples (more than 512), 5 classes, 60 flipped labels, non-contiguous logits",
        11,
        600,
        5,
        60,
        contiguous=False,
    )
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
            isinstance(out, torch.Tensor),
            f"returned {describe(out)}, expected a tensor of 40 indices"
            + ("; did you forget the return statement?" if out is None else ""),
        )
        report.expect(
            out.device.type == "meta",
            f"returned a tensor on {out.device.type}, expected one on meta: {WRONG_DEVICE_HINT}",
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
