"""Which tensors a remote result's gradient flows back to, listed the same way on both sides.

The scorer (``remote.py``) and the answer process (``answers.py``) each walk *their own copy* of a
call's arguments with :func:`grad_inputs`; the two lists correspond item by item, so a gradient the
answer process computes for its i-th input is the gradient of the scorer's i-th input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def grad_inputs(
    args: list[Any], kwargs: dict[str, Any], extra: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """Tensors that require grad in ``args`` and ``kwargs`` (also inside lists, tuples and dicts,
    two levels deep), in order, then ``extra`` (a module mirror's parameters).

    A module argument is skipped: it crosses pickled, so its parameters' graph stays remote.
    """
    found: list[torch.Tensor] = []

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                found.append(value)
        elif isinstance(value, (list, tuple)) and depth < 2:
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, dict) and depth < 2:
            for item in value.values():
                walk(item, depth + 1)

    for value in [*args, *kwargs.values()]:
        if not isinstance(value, nn.Module):
            walk(value, 0)
    return found + list(extra or [])
