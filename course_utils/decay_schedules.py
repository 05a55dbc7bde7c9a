"""Learning-rate decay schedules copied from elsewhere, and what they do in *this* run.

A schedule is written in some unit (epochs or optimiser steps) for one run length. ImageNet scripts use
``StepLR(step_size=30, gamma=0.1)``, lr -> lr / 10 every 30 epochs of a 90-epoch run. Copied into a
run of a few epochs it never fires; stepped once per batch instead of per epoch it fires every 30
*steps* and freezes training within the first epoch. ``copied_and_scaled_schedules`` names four
variants; ``lr_curve`` replays one on a dummy optimiser to get the exact rate at every step::

    rate[k] = the optimiser's lr during step k, k = 0 .. epochs * steps_per_epoch - 1
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler, StepLR

MakeScheduler = Callable[[torch.optim.Optimizer], LRScheduler]
# name -> (scheduler factory or None for a constant rate, stepped per batch?)
Schedules = dict[str, tuple[MakeScheduler | None, bool]]


def copied_and_scaled_schedules(late_epoch: int) -> Schedules:
    """Constant; ImageNet's StepLR(30, 0.1) stepped per epoch (as written) and per batch (its unit
    silently changed); and a step decay by 10 at ``late_epoch``, scaled to this run."""
    if late_epoch < 1:
        raise ValueError(f"late_epoch must be >= 1, got {late_epoch}")

    def imagenet(optimizer: torch.optim.Optimizer) -> LRScheduler:
        return StepLR(optimizer, step_size=30, gamma=0.1)

    def scaled(optimizer: torch.optim.Optimizer) -> LRScheduler:
        return StepLR(optimizer, step_size=late_epoch, gamma=0.1)

    return {
        "constant": (None, False),
        "StepLR(30) per epoch (ImageNet default)": (imagenet, False),
        "StepLR(30) per batch (unit changed)": (imagenet, True),
        f"StepLR({late_epoch}) per epoch (scaled)": (scaled, False),
    }


def lr_curve(
    make_scheduler: MakeScheduler | None,
    per_batch: bool,
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float = 3e-4,
) -> list[float]:
    """The learning rate at every step of an ``epochs`` x ``steps_per_epoch`` run that starts at
    ``lr``, replayed on a one-parameter Adam (no training happens)."""
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()  # a no-op step (no gradient); keeps the scheduler's order check happy
            if scheduler is not None and per_batch:
                scheduler.step()
        if scheduler is not None and not per_batch:
            scheduler.step()
    return rates
