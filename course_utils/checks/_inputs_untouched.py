"""Did the answer change what it was given? (checks of stages 03, 04 and 06)

``kept = keep(x=x, targets=y, history=losses)`` sets aside a copy of each input before the call
(tensors: a clone and the ``._version`` counter, which every in-place op moves; lists and tuples:
their items, copied; modules: each parameter's value and ``.grad``); after the call
``expect_untouched(report, kept)`` fails the case with "changes its input in place (names)" when
any of them differs. Meta tensors are compared by their version counter only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_utils.checks._report import Report

IN_PLACE = (
    "changes its input in place ({names}): the caller's data must come back as it was "
    "(write x = x * 2, not x *= 2, x.mul_(2), x[mask] = ... or list.pop()/.sort(); "
    "work on a copy if you must)"
)


@dataclass
class _Kept:
    given: Any
    copy: Any
    version: int | None
    requires_grad: bool | None = None


def _snapshot(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return None if value.device.type == "meta" else value.detach().clone()
    if isinstance(value, nn.Module):
        return {
            name: (p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
            for name, p in value.named_parameters()
        }
    if isinstance(value, (list, tuple)):
        return [(item, _snapshot(item), getattr(item, "_version", None)) for item in value]
    return copy.deepcopy(value)


def keep(**inputs: Any) -> dict[str, _Kept]:
    """A copy of every input (name=value), to compare after the answer ran."""
    return {
        name: _Kept(
            value,
            _snapshot(value),
            getattr(value, "_version", None),
            getattr(value, "requires_grad", None) if isinstance(value, torch.Tensor) else None,
        )
        for name, value in inputs.items()
    }


def _changed(given: Any, kept: Any, version: int | None) -> bool:
    if isinstance(given, torch.Tensor):
        if version is not None and given._version != version:
            return True
        return kept is not None and not torch.equal(given.detach(), kept)
    if isinstance(given, nn.Module):
        now = dict(given.named_parameters())
        for name, (value, grad) in kept.items():
            param = now.get(name)
            if param is None or not torch.equal(param.detach(), value):
                return True
            if (param.grad is None) != (grad is None):
                return True
            if grad is not None and not torch.equal(param.grad, grad):
                return True
        return False
    if isinstance(given, (list, tuple)):
        if len(given) != len(kept):
            return True
        for item, (old_item, old_copy, old_version) in zip(given, kept, strict=True):
            if isinstance(old_item, torch.Tensor):
                if item is not old_item or _changed(item, old_copy, old_version):
                    return True
            elif _changed(item, old_copy, None):
                return True
        return False
    try:
        return bool(given != kept)
    except Exception:
        return False


def changed_inputs(kept: dict[str, _Kept]) -> list[str]:
    """The names of the inputs that differ from their kept copy."""
    return [
        name
        for name, k in kept.items()
        if _changed(k.given, k.copy, k.version)
        or (k.requires_grad is not None and k.given.requires_grad != k.requires_grad)
    ]


def expect_untouched(report: Report, kept: dict[str, _Kept]) -> None:
    """Fail the current case if any input differs from the copy kept before the call."""
    changed = changed_inputs(kept)
    if changed:
        report.fail(IN_PLACE.format(names=", ".join(changed)))
