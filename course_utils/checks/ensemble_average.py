"""Check for stage 06's ``ensemble_average(logits_list) -> Tensor (N, C)``: the mean of the models'
softmax probabilities.

Coverage:

- value: against ``course_utils.ensemble.average_probabilities`` on 1 to 5 models, float32 and
  float64, logits of size ~1000 (no overflow), more than 512 rows (600 x 10); a wrong value names the
  index and size of the largest error;
- gradient: not checked (an ensemble's average is not trained through);
- input untouched: the list keeps its length and its tensor objects, each tensor its values and
  ``._version`` counter (also when one tensor object appears twice in the list);
- every argument: a list and a tuple (hidden) of logits;
- contract: shape (N, C) and the logits' dtype, meta tensors (no CPU tensors created, no host
  reads), no call of the course's version (hidden);
- hints: a classic variant is named only when no other variant gives the same values on that input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from course_utils import ensemble
from course_utils.checks._differences import expect_close_at, unambiguous
from course_utils.checks._guards import (
    meta_like,
)
from course_utils.checks._inputs_untouched import expect_untouched, keep
from course_utils.checks._library_calls import _reference_case
from course_utils.checks._meta import _device_error, _expect_meta, _meta_failure
from course_utils.checks._report import CheckResult, Report

__all__ = ["check_ensemble_average"]


def _ensemble_variants(logits: list[torch.Tensor]) -> dict[str, Callable[[], torch.Tensor]]:
    stacked = torch.stack(logits)
    classes = stacked.shape[-1]
    return {
        "averaged the logits, then applied softmax; apply softmax to each model's logits, then "
        "average the probabilities": lambda: stacked.mean(0).softmax(-1),
        "forgot the softmax: average probabilities, not logits": lambda: stacked.mean(0),
        "averaged argmax votes (hard voting); average the softmax probabilities": lambda: (
            F.one_hot(stacked.argmax(-1), classes).to(stacked.dtype).mean(0)
        ),
        "softmax over the models axis; softmax over the classes, dim=-1": lambda: stacked.softmax(
            0
        ).mean(0),
        "softmax over the samples axis; softmax over the classes, dim=-1": lambda: stacked.softmax(
            1
        ).mean(0),
        "summed the probabilities; divide by the number of models (take the mean)": lambda: (
            stacked.softmax(-1).sum(0)
        ),
        "averaged log-probabilities; average the probabilities themselves": lambda: (
            stacked.log_softmax(-1).mean(0)
        ),
    }


def _ensemble_case(
    report: Report,
    learner_fn: Callable[..., Any],
    logits: list[torch.Tensor],
    as_tuple: bool = False,
) -> None:
    m, (n, c) = len(logits), logits[0].shape
    expected = ensemble.average_probabilities(logits)
    given = tuple(logits) if as_tuple else list(logits)  # the tensors themselves: edits show
    copies = [t.clone() for t in logits]
    kept = keep(logits_list=given)
    got = learner_fn(given)
    expect_untouched(report, kept)
    logits = copies
    if got is None:
        report.fail(f"returned None (a missing return statement?); expected a tensor ({n}, {c})")
    if not isinstance(got, torch.Tensor):
        report.fail(f"should return a tensor of shape ({n}, {c}), got {type(got).__name__}")
    shape = tuple(got.shape)
    if shape != (n, c):
        reasons = {
            (m, c): "averaged over the samples axis; average over the models (the list), dim=0 of "
            "torch.stack(logits_list)",
            (m, n): "averaged over the classes axis; average over the models (the list)",
            (m, n, c): "did not average over the models",
        }
        reason = reasons.get(shape) if len({m, n, c}) == 3 else None
        report.fail(
            f"{m} models, {n} samples, {c} classes: output has shape {shape}, expected ({n}, {c})"
            + (f". Looks like: {reason}" if reason else "")
        )
    if got.dtype != expected.dtype:
        report.fail(f"output dtype should match the logits ({expected.dtype}), got {got.dtype}")
    largest = float(torch.stack(logits).abs().max())
    if torch.isfinite(expected).all() and not torch.isfinite(got).all():
        report.fail(
            f"the output has nan/inf for logits as large as {largest:.0f}. Looks like: exp "
            "overflowed; use torch.softmax, which subtracts the max first"
        )
    hint = None
    if not torch.allclose(got.detach().double(), expected.double(), rtol=1e-4, atol=1e-6):
        variants = [(h, compute()) for h, compute in _ensemble_variants(logits).items()]
        for h, value in unambiguous(variants, rtol=1e-4, atol=1e-6):
            if torch.allclose(got.detach().double(), value.double(), rtol=1e-4, atol=1e-6):
                hint = h
                break
    expect_close_at(report, got, expected, what="probabilities", hint=hint, rtol=1e-4, atol=1e-6)


def check_ensemble_average(
    learner_fn: Callable[[Sequence[torch.Tensor]], torch.Tensor], *, hidden: bool = False
) -> CheckResult:
    """Check ``ensemble_average(logits_list) -> Tensor (N, C)``.

    Expected: the mean over the M models of ``softmax(logits, dim=-1)``, each row a probability
    distribution, with the logits' dtype and device. ``logits_list`` is a list of M tensors (N, C).
    Tried on 3 models x 5 samples x 4 classes, one model, float64 logits, logits of size ~1000,
    600 samples and meta tensors; the logits must come back unchanged. Hidden: 5 models x 1 sample x 2 classes, a tuple input.
    """
    report = Report("ensemble_average")
    gen = torch.Generator().manual_seed(0)
    cases = [
        (
            "3 models, 5 samples, 4 classes",
            [3 * torch.randn(5, 4, generator=gen) for _ in range(3)],
        ),
        ("one model", [torch.randn(6, 3, generator=gen)]),
        (
            "float64 logits",
            [torch.randn(4, 3, generator=gen, dtype=torch.float64) for _ in range(2)],
        ),
        ("large logits (~1000)", [1000 * torch.randn(5, 4, generator=gen) for _ in range(3)]),
        (
            "more than 512 rows: 3 models, 600 samples, 10 classes",
            [2 * torch.randn(600, 10, generator=gen) for _ in range(3)],
        ),
    ]
    if hidden:
        cases += [
            ("5 models, 1 sample, 2 classes", [torch.randn(1, 2, generator=gen) for _ in range(5)]),
            ("2 models, 7 samples, 10 classes", [torch.randn(7, 10, generator=gen)] * 2),
        ]
    for label, logits in cases:
        with report.case(label):
            _ensemble_case(report, learner_fn, logits)
    if hidden:
        with report.case("a tuple of logits"):
            _ensemble_case(
                report, learner_fn, [torch.randn(3, 4, generator=gen)] * 3, as_tuple=True
            )
    with report.case("on the meta device"):
        logits = meta_like((5, 4), (5, 4), (5, 4))
        try:
            got = learner_fn(logits)
        except Exception as error:
            if _device_error(error):
                report.fail(_meta_failure(error))
            raise
        if got is None:
            report.fail("returned None (a missing return statement?); expected a tensor (5, 4)")
        _expect_meta(report, got, (5, 4))
    if hidden:
        _reference_case(
            report,
            learner_fn,
            [
                "course_utils.ensemble.average_probabilities",
                "course_utils.ensemble.ensemble_predict",
            ],
            lambda: learner_fn([torch.randn(2, 3, generator=gen)]),
        )
    return report.finish("mean of the models' softmax probabilities, stable for large logits")
