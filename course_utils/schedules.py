"""Learning-rate schedules: cosine annealing with warm restarts (SGDR) and the LR range test.

Shared interface: a schedule is a pure function of the step count, ``lr = f(step, ...)``, where
``step`` counts optimizer steps taken so far (0 for the first step) and may be fractional (``epoch +
i / iters`` when the unit is an epoch). The functions return Python floats; set them on the
optimizer with ``for group in optimizer.param_groups: group["lr"] = lr``.

Sources: Loshchilov & Hutter, *SGDR*, arXiv:1608.03983 (cosine restarts); Huang et al., *Snapshot
Ensembles*, arXiv:1704.00109 (one snapshot per cycle); Smith, *Cyclical Learning Rates*,
arXiv:1506.01186 (the LR range test).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


def _check_restart_args(T_0: int, T_mult: int) -> None:
    if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 < 1:
        raise ValueError(f"T_0 must be a positive integer, got {T_0!r}")
    if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
        raise ValueError(f"T_mult must be an integer >= 1, got {T_mult!r}")


def _position_in_cycle(step: float, T_0: int, T_mult: int) -> tuple[float, int]:
    """``(T_cur, T_i)``: steps since the last restart and the length of the current cycle."""
    if T_mult == 1:
        return step % T_0, T_0
    # Walk the cycles (their lengths grow geometrically, so this loop is short) instead of torch's
    # closed form with math.log, which can round the cycle index down at an exact boundary.
    t_cur, t_i = step, T_0
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= T_mult
    return t_cur, t_i


def cosine_restart_lr(
    step: float, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0
) -> float:
    """Learning rate of cosine annealing with warm restarts at ``step``.

    lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where T_cur is the number
    of steps since the last restart and T_i the length of the current cycle: T_0 for the first
    cycle, then T_0 * T_mult, T_0 * T_mult**2, ... The lr is ``base_lr`` at every restart (T_cur =
    0) and approaches ``eta_min`` at the end of each cycle.

    Equal to ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min)``
    after ``step`` calls of ``scheduler.step()`` (the lr used by optimizer step number ``step``,
    counting from 0), and to ``scheduler.step(step)`` for fractional steps.

    Args:
        step: optimizer steps taken so far, >= 0; may be fractional.
        base_lr: the maximum lr (the optimizer's initial lr in PyTorch).
        T_0: length of the first cycle in steps, a positive integer.
        T_mult: factor by which each cycle is longer than the previous one, an integer >= 1.
        eta_min: the minimum lr.

    Returns:
        The learning rate, a Python float.
    """
    _check_restart_args(T_0, T_mult)
    if not step >= 0:
        raise ValueError(f"step must be >= 0, got {step!r}")
    t_cur, t_i = _position_in_cycle(step, T_0, T_mult)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cycle_boundaries(total_steps: int, T_0: int, T_mult: int = 1) -> list[int]:
    """The step counts at which a cycle ends (and the next one restarts), up to ``total_steps``.

    Boundaries are T_0, T_0 + T_0*T_mult, T_0 + T_0*T_mult + T_0*T_mult**2, ... that are <=
    total_steps. After that many optimizer steps the model sits at the bottom of a cycle: that is
    when a snapshot ensemble saves its weights (see ``course_utils.ensemble.SnapshotCollector``).

    Example: ``cycle_boundaries(70, T_0=10, T_mult=2) == [10, 30, 70]``.
    """
    _check_restart_args(T_0, T_mult)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
        raise ValueError(f"total_steps must be a non-negative integer, got {total_steps!r}")
    boundaries = []
    end, length = T_0, T_0
    while end <= total_steps:
        boundaries.append(end)
        length *= T_mult
        end += length
    return boundaries


@dataclass
class LRRangeResult:
    """Outcome of ``lr_range_test``.

    ``lrs[i]`` is the lr of step i, ``losses[i]`` the smoothed (bias-corrected exponential moving
    average) training loss at that step, ``raw_losses[i]`` the loss itself, and ``suggested_lr`` the
    lr the test recommends (see ``lr_range_test`` for the rule).
    """

    lrs: list[float]
    losses: list[float]
    suggested_lr: float
    raw_losses: list[float] = field(default_factory=list)


def _suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """Steepest descent of the smoothed loss vs log(lr) up to its minimum, else min-loss lr/10."""
    best = int(np.argmin(losses))
    if best < 2:
        return lrs[best] / 10
    slopes = np.gradient(np.asarray(losses[: best + 1]), np.log(np.asarray(lrs[: best + 1])))
    return lrs[int(np.argmin(slopes))]


def lr_range_test(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    optimizer: str = "adam",
    smooth: float = 0.05,
    diverge_factor: float = 4.0,
) -> LRRangeResult:
    """Sweep the lr exponentially from ``min_lr`` to ``max_lr`` and record the training loss.

    Step i trains one batch with lr_i = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1)). The
    loss is smoothed by an exponential moving average with weight ``smooth`` on the newest value,
    bias-corrected as in Adam: avg_i = (1 - smooth) * avg_{i-1} + smooth * loss_i, reported as
    avg_i / (1 - (1 - smooth) ** (i + 1)). The sweep stops early when the smoothed loss exceeds
    ``diverge_factor`` times its minimum so far, or is not finite.

    Suggested lr: the lr where the smoothed loss falls fastest against log(lr) (the most negative
    ``np.gradient``), searched among the steps up to the minimum of the smoothed loss. When fewer
    than three steps precede the minimum, the suggestion is a tenth of the lr at the minimum.

    The model's weights and train/eval mode are restored afterwards, so the test does not change the
    model. The optimizer is created here: Adam (``optimizer="adam"``) or SGD with momentum 0.9
    (``"sgd"``). ``batches`` yields ``(x, y)`` already on the model's device; a re-iterable (a list,
    a DataLoader) is cycled when it holds fewer than ``num_steps`` batches, a one-shot iterator ends
    the sweep when exhausted. Each step reads the loss back to the host (one sync per step).

    Returns:
        ``LRRangeResult(lrs, losses, suggested_lr, raw_losses)``.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an integer >= 2, got {num_steps!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if not 0 < smooth <= 1:
        raise ValueError(f"smooth must be in (0, 1], got {smooth!r}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")

    initial_state = copy.deepcopy(model.state_dict())
    was_training = model.training
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=min_lr)
    else:
        opt = torch.optim.SGD(params, lr=min_lr, momentum=0.9)

    lrs: list[float] = []
    losses: list[float] = []
    raw_losses: list[float] = []
    avg, best = 0.0, math.inf
    iterator = iter(batches)
    one_shot = iterator is batches
    try:
        model.train()
        for i in range(num_steps):
            try:
                x, y = next(iterator)
            except StopIteration:
                if one_shot:
                    break
                iterator = iter(batches)
                try:
                    x, y = next(iterator)
                except StopIteration:
                    break
            lr = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            avg = (1 - smooth) * avg + smooth * value
            smoothed = avg / (1 - (1 - smooth) ** (i + 1))
            lrs.append(lr)
            raw_losses.append(value)
            losses.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge_factor * best:
                break
            best = min(best, smoothed)
    finally:
        model.load_state_dict(initial_state)
        model.train(was_training)

    if not lrs:
        raise ValueError("batches yielded no (x, y) pair")
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    if not finite:
        return LRRangeResult(lrs, losses, lrs[0] / 10, raw_losses)
    suggestion = _suggest_lr([lr for lr, _ in finite], [loss for _, loss in finite])
    return LRRangeResult(lrs, losses, suggestion, raw_losses)
