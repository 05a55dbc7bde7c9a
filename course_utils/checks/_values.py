"""Small shared helpers of the training checks: a number out of whatever the answer returned, a
seeded build that leaves the caller's RNG alone, the first buggy variant that matches, the KS distance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from course_utils.checks._report import Report, describe


def _as_float(report: Report, value: object, what: str) -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor; else FAIL."""
    if isinstance(value, bool):
        report.fail(f"{what} should be a number, got the bool {value}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().cpu().reshape(()))
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    report.fail(f"{what} should be a single number, got {describe(value)}")
    raise AssertionError  # unreachable: report.fail raises


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    """``build()`` with the global torch RNG seeded, without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _first_match(
    got: Any, variants: dict[str, Callable[[], Any]], same: Callable[[Any, Any], bool]
) -> str | None:
    """The hint of the first buggy variant whose output equals ``got``."""
    for hint, compute in variants.items():
        try:
            if same(got, compute()):
                return hint
        except Exception:  # a variant undefined on this input (e.g. log(0)) matches nothing
            continue
    return None


def _ks_uniform(u: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the sample ``u`` and U(0, 1) (1.0 if undefined)."""
    if u.size == 0 or not np.all(np.isfinite(u)):
        return 1.0
    u = np.sort(np.clip(u, 0.0, 1.0))
    n = u.size
    ranks = np.arange(1, n + 1)
    return float(max(np.max(ranks / n - u), np.max(u - (ranks - 1) / n)))
