"""What a training step costs, measured, so that "copy a proven architecture" fits the hardware.

``seconds_per_image`` times one Adam step on a few images (the best of a few repeats after a warm-up
step, robust to other programs using the CPU) and divides by the batch size; multiplied by the
training-set size it estimates an epoch (roughly: larger batches are a little cheaper per image).
``first_affordable`` picks, in the caller's order of preference, the first candidate within budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def seconds_per_image(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 4,
    repeats: int = 3,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> float:
    """Wall time of one Adam step on ``batch_size`` of ``images``, divided by ``batch_size``.

    The best of ``repeats`` timed steps after a one-image warm-up step (the first step pays for memory
    allocation). The warm-up runs in eval mode (BatchNorm cannot normalise a single 1x1 map); timed
    steps in train mode. Reading one parameter back waits for an asynchronous device to finish. The
    model's weights change (it takes real steps): time a copy you do not need.
    """
    if batch_size < 1 or repeats < 1 or len(images) < batch_size:
        raise ValueError(
            f"need batch_size >= 1, repeats >= 1 and at least batch_size images, got "
            f"batch_size={batch_size}, repeats={repeats}, {len(images)} images"
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    was_training, best = model.training, math.inf
    for size in (1,) + (batch_size,) * repeats:
        model.train(size > 1)
        start = time.perf_counter()
        loss = loss_fn(model(images[:size]), labels[:size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(next(model.parameters()).detach().sum())  # wait for the device to finish
        if size > 1:
            best = min(best, time.perf_counter() - start)
    model.train(was_training)
    return best / batch_size


def first_affordable(costs: dict[str, float], limit: float) -> str:
    """The first name (in ``costs``' order: most preferred first) whose cost is <= ``limit``; if none
    fits, the last one (the simplest, by the caller's ordering)."""
    if not costs:
        raise ValueError("no candidates to choose from")
    return next((name for name, cost in costs.items() if cost <= limit), list(costs)[-1])
