"""Which ``torch.optim`` optimizers an answer steps, seen by a global step hook.

``optimizer_steps()`` records one entry per ``optimizer.step()`` run while it is active: the
optimizer's class, an identity (distinct optimizers get distinct numbers), whether it kept state
after the step (momentum buffers, moment estimates: plain SGD keeps none) and its hyper-parameters.
In a kernel the hook sees the answer's steps directly; under trusted grading the answer runs in
another process, which records the same entries around each call and sends them back
(``grading/scoring/answers.py``), and the stand-in adds them to every recording active here
(``RECORDINGS``). ``fresh_stateful_optimizer(steps)`` reads the evidence of the classic bug: a new
optimizer built at every step, whose state restarts from zero each time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

# The recordings in force, innermost last; remote stand-ins append what the answer process saw.
RECORDINGS: list[list[dict[str, Any]]] = []

_SHOWN = ("lr", "momentum", "alpha", "betas", "nesterov", "weight_decay")


def describe_step(optimizer: torch.optim.Optimizer, number: int) -> dict[str, Any]:
    """One step as plain data: ``{"type", "optimizer", "stateful", "settings"}``."""
    settings = {}
    for key in _SHOWN:
        value = optimizer.defaults.get(key)
        if isinstance(value, (bool, int, float)) or (
            isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)
        ):
            settings[key] = value
    stateful = any(
        isinstance(v, torch.Tensor) for state in optimizer.state.values() for v in state.values()
    )
    return {
        "type": type(optimizer).__name__,
        "optimizer": number,
        "stateful": stateful,
        "settings": settings,
    }


@contextlib.contextmanager
def optimizer_steps() -> Iterator[list[dict[str, Any]]]:
    """Record every optimizer step taken while active (see the module docstring)."""
    steps: list[dict[str, Any]] = []
    seen: dict[int, tuple[torch.optim.Optimizer, int]] = {}  # kept alive: ids stay distinct

    def after_step(optimizer: torch.optim.Optimizer, *_: Any) -> None:
        kept = seen.setdefault(id(optimizer), (optimizer, len(seen)))
        steps.append(describe_step(optimizer, kept[1]))

    handle = register_optimizer_step_post_hook(after_step)
    RECORDINGS.append(steps)
    try:
        yield steps
    finally:
        handle.remove()
        RECORDINGS.remove(steps)


def add_remote_steps(steps: Any) -> None:
    """Append the steps an answer process reported to every recording active here (only entries of
    the recorded form are kept: the report comes from the answer's process)."""
    if not RECORDINGS or not isinstance(steps, list):
        return
    clean = []
    for step in steps:
        if (
            isinstance(step, dict)
            and isinstance(step.get("type"), str)
            and isinstance(step.get("optimizer"), int)
        ):
            settings = step.get("settings")
            clean.append(
                {
                    "type": step["type"][:60],
                    "optimizer": step["optimizer"],
                    "stateful": bool(step.get("stateful")),
                    "settings": settings if isinstance(settings, dict) else {},
                }
            )
    for recording in RECORDINGS:
        # Optimizer numbers restart in each call; offset them past those already recorded
        offset = 1 + max((s["optimizer"] for s in recording), default=-1)
        recording += [{**s, "optimizer": s["optimizer"] + offset} for s in clean]


def fresh_stateful_optimizer(steps: list[dict[str, Any]]) -> str | None:
    """A FAIL hint when the steps show a new stateful optimizer built at (nearly) every step: at
    least 3 steps, more than half of them the first step of an optimizer of their own, each of which
    keeps state. None otherwise (plain SGD keeps no state, so rebuilding it changes nothing)."""
    if len(steps) < 3:
        return None
    counts: dict[int, int] = {}
    for step in steps:
        counts[step["optimizer"]] = counts.get(step["optimizer"], 0) + 1
    if len(counts) <= len(steps) / 2 or not all(s["stateful"] for s in steps):
        return None
    kinds = sorted({s["type"] for s in steps})
    first = steps[0]
    settings = ", ".join(  # what tells the SGD variants apart
        f"{k}={v}"
        for k, v in first["settings"].items()
        if k in ("momentum", "nesterov") and v not in (0, 0.0, False)
    )
    name = f"{first['type']}({settings})" if settings and len(kinds) == 1 else "/".join(kinds)
    memory = {
        "SGD": "its momentum buffer",
        "RMSprop": "its running average of squared gradients",
        "Adagrad": "its sum of squared gradients",
    }.get(first["type"], "its moment estimates")
    return (
        f"a new {name} built at every step ({len(counts)} optimizers for {len(steps)} steps): "
        f"{memory} restarts from zero each time, so every step is a first step; build the "
        "optimizer once, before the loop"
    )
