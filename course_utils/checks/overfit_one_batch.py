"""Check for stage 02's ``overfit_one_batch(model, x, y, steps) -> list[float]``.

Train ``model`` in place on one batch with Adam (lr 3e-3 works) and cross-entropy, return the ``steps``
losses as floats.

What the check verifies:

- value: the model's loss on the batch ends below 0.01 (``_OVERFIT_TARGET``); the first recorded loss is
  the loss at the start (relative 1e-4), so a loss recorded after ``optimizer.step()`` fails, named as such
  only when the last recorded loss also equals the loss after training.
- gradient: the parameters' gradients, recorded by hooks at every backward, must not accumulate (named
  zero_grad only when ``.grad`` holds the sum of the passes); parameters that receive gradients but never
  move are named missing from the optimizer.
- input untouched: x and y keep their values, x gets no requires_grad (told also when the history or the
  training is wrong).
- every argument: steps = 200 and 7 (a constant number of steps fails); hidden: batches of 2 and 8.
- contract: ``steps`` Python floats, one per step; one optimizer for the whole loop: a new stateful
  optimizer at every step (SGD with momentum, RMSprop, Adam, Adagrad...: its state restarts from zero)
  is seen by a step hook (``_optimizers``, also through the trusted channel) and named with its settings;
  plain SGD keeps no state, so rebuilding it is not a bug. An update written by hand that behaves like a
  new Adam every step moves each weight by exactly lr * sign(gradient), which a least-squares fit of the
  total move detects.
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
from course_utils.checks._numbers import differing
from course_utils.checks._optimizers import fresh_stateful_optimizer, optimizer_steps
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
        self.passes: dict[str, list[torch.Tensor]] = {}
        for name, p in model.named_parameters():
            p.register_hook(self._recorder(name))

    def _recorder(self, name: str) -> Callable[[torch.Tensor], None]:
        def record(grad: torch.Tensor) -> None:
            self.last[name] = grad.detach().clone()
            self.total[name] = self.total.get(name, torch.zeros_like(grad)) + grad.detach()
            self.calls[name] = self.calls.get(name, 0) + 1
            self.passes.setdefault(name, []).append(grad.detach().clone())

        return record

    def accumulated(self, model: nn.Module) -> bool:
        """True when some ``.grad`` holds the sum of several passes rather than the last one."""
        for name, p in model.named_parameters():
            if p.grad is None or self.calls.get(name, 0) < 2:
                continue
            grad = p.grad.detach().double()  # the answer may train in another dtype
            last, total = self.last[name].double(), self.total[name].double()
            if not torch.allclose(grad, last, rtol=1e-4, atol=1e-7) and torch.allclose(
                grad, total, rtol=1e-3, atol=1e-6
            ):
                return True
        return False


def _fresh_adam_fit(
    spy: _GradientSpy, model: nn.Module, before: list[torch.Tensor]
) -> float | None:
    """How well the total move of the parameters is explained by a new Adam every step.

    A new Adam's first step moves each weight by lr * g / (|g| + eps): the same size whatever the
    gradient. Returns the relative residual of the least-squares fit of the total move by
    -lr * sum_t g_t / (|g_t| + 1e-8) over one unknown lr (0: exactly that; a persistent Adam leaves
    most of the move unexplained), or None without enough passes."""
    moves, signs = [], []
    for (name, p), b in zip(model.named_parameters(), before, strict=True):
        passes = spy.passes.get(name, [])
        if len(passes) < 3:
            return None
        moves.append((p.detach() - b).reshape(-1).double())
        signs.append(sum(g / (g.abs() + 1e-8) for g in passes).reshape(-1).double())
    move, sign = torch.cat(moves), torch.cat(signs)
    if float(sign.norm()) == 0.0 or float(move.norm()) == 0.0:
        return None
    lr = -float(move @ sign) / float(sign @ sign)
    return float((move + lr * sign).norm() / move.norm())


def _overfit_case(
    report: Report,
    learner_fn: Callable[..., Any],
    seed: int,
    n: int,
    steps: int,
    require_target: bool = True,
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    x_kept, y_kept = x.clone(), y.clone()
    model = _seeded(seed, lambda: nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3)))
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        start = float(F.cross_entropy(model(x), y))
    spy = _GradientSpy(model)

    with optimizer_steps() as optimizer_log:
        history = learner_fn(model, x, y, steps)
    if not torch.equal(x, x_kept) or not torch.equal(y, y_kept) or x.requires_grad:
        report.note("changes its input in place (x or y): train on the batch, do not write to it")

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
    frozen = [
        name
        for (name, p), b in zip(model.named_parameters(), before, strict=True)
        if torch.equal(b, p.detach()) and spy.calls.get(name, 0) > 0
    ]
    moved = len(frozen) < len(before) and any(
        not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    if frozen and moved:
        report.fail(
            f"the parameters {', '.join(frozen)} received gradients but never changed: they are "
            "missing from the optimizer; pass model.parameters() to it"
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
    with torch.no_grad():
        final = float(F.cross_entropy(model(x), y))
    if not math.isclose(values[0], start, rel_tol=1e-4, abs_tol=1e-6):
        shown_start, shown_first = differing(start, values[0])
        after = math.isclose(values[-1], final, rel_tol=1e-5, abs_tol=1e-7) and values[0] < start
        report.fail(
            f"the first loss should be the loss at the start, {shown_start}, got {shown_first}"
            + (
                ". Looks like: the loss is recorded after optimizer.step() (the last one equals "
                "the loss after training); record loss.item() of the forward each step trains on"
                if after
                else ": record loss.item() of F.cross_entropy(model(x), y) at each step"
            )
        )
    fresh = fresh_stateful_optimizer(optimizer_log)
    if fresh:
        report.fail(fresh)
    fit = _fresh_adam_fit(spy, model, before)
    if fit is not None and fit < 0.05:
        report.fail(  # an update written by hand, no torch.optim step seen
            "every step moved each weight by the same amount, lr * sign(gradient): a new Adam "
            "(or RMSprop, Adagrad) built at every step, its moment estimates restarting from zero "
            "each time; build the optimizer once, before the loop"
        )
    if not require_target:
        return
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
            "Common causes: a too low or too high lr, a loss other than F.cross_entropy(model(x), "
            "y), or the model in eval mode with dropout"
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
    with report.case("MLP 8-64-3, batch of 4, steps=7 (the history only)"):
        _overfit_case(report, learner_fn, 3, 4, 7, require_target=False)
    if hidden:

        def run() -> None:
            gen = torch.Generator().manual_seed(5)
            model = _seeded(5, lambda: nn.Sequential(nn.Linear(8, 3)))
            learner_fn(model, torch.randn(2, 8, generator=gen), torch.tensor([0, 1]), 2)

        _reference_case(report, learner_fn, ["course_utils.sanity.overfit_one_batch"], run)
    return report.finish(f"the loss of one batch falls below {_OVERFIT_TARGET} within 200 steps")
