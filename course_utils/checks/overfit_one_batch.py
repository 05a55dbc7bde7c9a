"""Check for stage 02's ``overfit_one_batch(model, x, y, steps) -> list[float]``.

Train ``model`` in place on one batch with Adam (lr 3e-3 works) and cross-entropy, return the ``steps``
losses as floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks._guards import (
    one_cpu_thread,
)
from course_utils.checks._library_calls import _reference_case
from course_utils.checks._report import CheckResult, Report, describe
from course_utils.checks._values import _seeded

__all__ = ["check_overfit_one_batch"]

_OVERFIT_TARGET = 1e-2


class _GradientSpy:
    """Records, per parameter, the gradient of the last backward pass and the sum of all passes."""

    def __init__(self, model: nn.Module) -> None:
        self.last: dict[str, torch.Tensor] = {}
        self.total: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        for name, p in model.named_parameters():
            p.register_hook(self._recorder(name))

    def _recorder(self, name: str) -> Callable[[torch.Tensor], None]:
        def record(grad: torch.Tensor) -> None:
            self.last[name] = grad.detach().clone()
            self.total[name] = self.total.get(name, torch.zeros_like(grad)) + grad.detach()
            self.calls[name] = self.calls.get(name, 0) + 1

        return record

    def accumulated(self, model: nn.Module) -> bool:
        """True when some ``.grad`` holds the sum of several passes rather than the last one."""
        for name, p in model.named_parameters():
            if p.grad is None or self.calls.get(name, 0) < 2:
                continue
            last, total = self.last[name], self.total[name]
            if not torch.allclose(p.grad, last, rtol=1e-4, atol=1e-7) and torch.allclose(
                p.grad, total, rtol=1e-3, atol=1e-6
            ):
                return True
        return False


def _overfit_case(
    report: Report, learner_fn: Callable[..., Any], seed: int, n: int, steps: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    model = _seeded(seed, lambda: nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3)))
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        start = float(F.cross_entropy(model(x), y))
    spy = _GradientSpy(model)

    history = learner_fn(model, x, y, steps)

    if isinstance(history, torch.Tensor) or not isinstance(history, (list, tuple)):
        report.fail(
            f"should return a list of {steps} floats (one loss per step), got {describe(history)}"
        )
    if len(history) != steps:
        report.fail(f"expected {steps} losses (one per step), got {len(history)}")
    tensors = [h for h in history if isinstance(h, torch.Tensor)]
    if tensors:
        attached = any(t.requires_grad for t in tensors)
        report.fail(
            "the history holds tensors"
            + (
                " still attached to the graph (every step's graph stays in memory)"
                if attached
                else ""
            )
            + ": append loss.item(), a Python float"
        )
    if not all(isinstance(h, (int, float, np.floating, np.integer)) for h in history):
        report.fail(f"the history should hold floats, got {describe(list(history[:3]))}")
    values = [float(h) for h in history]
    if not all(math.isfinite(v) for v in values):
        report.fail("the loss became nan/inf: the learning rate is far too high")
    moved = any(
        not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    if not moved or max(values) - min(values) < 1e-7:
        report.fail(
            f"the loss stayed at {values[0]:.4g}: the model did not train. Pass "
            "model.parameters() to the optimizer, and call loss.backward() and "
            "optimizer.step() at every step"
        )
    if spy.accumulated(model):
        report.fail(
            "gradients accumulate across steps: call optimizer.zero_grad() before each backward "
            "(PyTorch adds new gradients to .grad)"
        )
    if not math.isclose(values[0], start, rel_tol=0.25):
        report.fail(
            f"the first loss should be the loss at the start, about {start:.4g}, got "
            f"{values[0]:.4g}: record loss.item() of F.cross_entropy(model(x), y) at each step"
        )
    with torch.no_grad():
        final = float(F.cross_entropy(model(x), y))
    if not final < _OVERFIT_TARGET:
        trend = (
            "it went up: the learning rate is too high"
            if values[-1] > values[0]
            else "it went down too slowly: the learning rate is too low (Adam with 3e-3 works) or "
            "the update is wrong"
        )
        report.fail(
            f"after {steps} steps the loss on the batch is {final:.3g} "
            f"(needs < {_OVERFIT_TARGET}), from {start:.3g} at the start; {trend}. "
            "Common causes: forgot optimizer.zero_grad(), a too low or too high lr, training "
            "under torch.no_grad(), or in eval mode with dropout"
        )


@one_cpu_thread
def check_overfit_one_batch(
    learner_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor, int], list[float]],
    *,
    hidden: bool = False,
) -> CheckResult:
    """Check ``overfit_one_batch(model, x, y, steps) -> list[float]``.

    Expected: train ``model`` in place on the batch with Adam (lr 3e-3 works) on
    ``F.cross_entropy(model(x), y)``, zeroing the gradients every step; return ``steps`` Python
    floats, the first being the loss at the start. PASS when the model's loss on the batch ends
    below 0.01. Tried on an MLP 8-64-3 with a batch of 4 for 200 steps (hidden: batches of 2 and 8).
    The check also inspects the parameters' ``.grad`` to see whether gradients accumulated.
    """
    report = Report("overfit_one_batch")
    cases = [(0, 4, 200)] + ([(1, 2, 200), (2, 8, 200)] if hidden else [])
    for seed, n, steps in cases:
        with report.case(f"MLP 8-64-3, batch of {n} random examples, steps={steps}"):
            _overfit_case(report, learner_fn, seed, n, steps)
    if hidden:

        def run() -> None:
            gen = torch.Generator().manual_seed(5)
            model = _seeded(5, lambda: nn.Sequential(nn.Linear(8, 3)))
            learner_fn(model, torch.randn(2, 8, generator=gen), torch.tensor([0, 1]), 2)

        _reference_case(report, learner_fn, ["course_utils.sanity.overfit_one_batch"], run)
    return report.finish(f"the loss of one batch falls below {_OVERFIT_TARGET} within 200 steps")
