"""Timing several implementations of one function, and checking that they agree.

``paired_timings(versions, args, rounds)`` runs every version in turn, round after round, and records
each version's seconds per call in each round: shape (rounds,) per version (with ``repeats`` > 1, the
fastest of that many back-to-back calls, which a pre-emption on a busy machine cannot inflate). Within a round the versions run back to back, so a
load spike on a shared machine hits all of them alike; the ratio of two versions' times within a round
is the paired measurement to hand to ``course_utils.evidence.compare_paired`` (e.g. on log10 seconds).

``agreement(results, reference)``: each version's largest absolute difference from the reference
version's output, and whether ``torch.allclose`` accepts it. ``timing_table`` formats both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch


def paired_timings(
    versions: Mapping[str, Callable[..., Any]],
    args: Sequence[Any],
    rounds: int = 5,
    slow: Mapping[str, int] | None = None,
    repeats: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Seconds per call of each version, ``rounds`` rounds, versions in turn within each round.

    ``slow``: versions to run in only the first ``slow[name]`` rounds (a loopy version that takes
    seconds), once per round; their arrays are shorter. The other versions run ``repeats`` times per
    round and keep the fastest call. Returns ``(seconds, outputs)``: ``seconds[name]`` shape
    (rounds,) (or (slow[name],)), ``outputs[name]`` the last output of each version.
    """
    if rounds < 1 or repeats < 1:
        raise ValueError(f"rounds and repeats must be >= 1, got {rounds} and {repeats}")
    slow = dict(slow or {})
    seconds: dict[str, list[float]] = {name: [] for name in versions}
    outputs: dict[str, Any] = {}
    for r in range(rounds):
        for name, fn in versions.items():
            if r >= slow.get(name, rounds):
                continue
            best = float("inf")
            for _ in range(1 if name in slow else repeats):
                start = time.perf_counter()
                outputs[name] = fn(*args)
                best = min(best, time.perf_counter() - start)
            seconds[name].append(best)
    return {name: np.asarray(v) for name, v in seconds.items()}, outputs


def agreement(
    outputs: Mapping[str, torch.Tensor], reference: str, rtol: float = 1e-5, atol: float = 1e-3
) -> dict[str, tuple[float, bool]]:
    """``{name: (max |output - reference output|, allclose)}`` for every version (the reference too)."""
    if reference not in outputs:
        raise ValueError(f"no output named {reference!r}; have {list(outputs)}")
    truth = outputs[reference]
    result = {}
    for name, value in outputs.items():
        if value.shape != truth.shape:
            result[name] = (float("inf"), False)
            continue
        gap = float((value - truth).abs().max()) if value.numel() else 0.0
        result[name] = (gap, bool(torch.allclose(value, truth, rtol=rtol, atol=atol)))
    return result


def timing_table(
    seconds: Mapping[str, np.ndarray], agrees: Mapping[str, tuple[float, bool]], reference: str
) -> str:
    """One line per version: median milliseconds, speed-up over ``reference``, max |diff|, equal."""
    base = float(np.median(seconds[reference]))
    lines = [f"{'version':>10} {'ms':>9} {'speed-up':>9} {'max |diff|':>11}  equal"]
    for name, values in seconds.items():
        ms = 1000 * float(np.median(values))
        gap, same = agrees[name]
        lines.append(f"{name:>10} {ms:9.2f} {base / (ms / 1000):8.0f}x {gap:11.2e}  {same}")
    return "\n".join(lines)
