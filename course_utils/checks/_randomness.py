"""Randomness the samplers' checks verify (log-uniform sampling, random search): draws that come from the
caller's generator and follow the intended distribution.

- ``ks_critical(n)``: the Kolmogorov-Smirnov distance above which ``n`` draws reject U(0, 1) at the
  false-alarm rate ``KS_ALPHA`` (asymptotic bound sqrt(ln(2 / alpha) / (2 n)); a correct answer fails one
  such test with probability at most ``KS_ALPHA``).
- ``DrawAudit``: runs an answer with a seeded NumPy ``Generator`` and records whether the generator was
  drawn from and whether NumPy's global generator changed (``np.random.seed`` inside, ``np.random.*`` draws),
  then puts the caller's global state back;
  ``ignores_generator_hint`` names the likeliest cause when two different generators gave the same draws.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

KS_ALPHA = 1e-4


def ks_critical(n: int, alpha: float = KS_ALPHA) -> float:
    """Critical KS distance of ``n`` draws at false-alarm rate ``alpha`` (two-sided, asymptotic)."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * max(n, 1)))


def _global_numpy_state() -> tuple[Any, ...]:
    state = np.random.get_state()
    return (state[0], state[1].copy(), *state[2:])


def _same_global_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


class DrawAudit:
    """Call ``fn(rng)`` with ``np.random.default_rng(seed)``; afterwards ``.used_rng`` says whether
    the generator's state moved and ``.touched_global`` whether NumPy's global state did."""

    def __init__(self, fn: Callable[[np.random.Generator], Any], seed: int) -> None:
        rng = np.random.default_rng(seed)
        state = copy.deepcopy(rng.bit_generator.state)
        saved = np.random.get_state()
        # A global state the answer cannot reproduce, so that a re-seed inside shows as a change
        # on every call; the caller's own state is put back afterwards.
        np.random.seed(seed + 7919)
        before = _global_numpy_state()
        try:
            self.value = fn(rng)
            self.touched_global = not _same_global_state(before, _global_numpy_state())
        finally:
            np.random.set_state(saved)
        self.used_rng = rng.bit_generator.state != state


def ignores_generator_hint(first: DrawAudit, second: DrawAudit, reordered: bool) -> str:
    """Why two different generators gave the same draws, as far as the evidence tells."""
    if first.touched_global or second.touched_global:
        return (
            "the draws come from NumPy's global generator, re-seeded inside (np.random.seed); draw "
            "from the rng argument (rng.uniform(...))"
        )
    if not (first.used_rng or second.used_rng):
        return (
            "the rng argument is never drawn from: a generator seeded inside (np.random.default_rng(0)) "
            "or a fixed grid; draw from the rng argument (rng.uniform(...))"
        )
    if reordered:
        return "a fixed set of values (a grid) shuffled with the rng; draw every value from the rng"
    return "the values do not depend on the rng argument; draw them from it (rng.uniform(...))"


GLOBAL_STATE_HINT = (
    "changes NumPy's global random state (np.random.seed or np.random.* draws): the caller's other "
    "random draws change with it; draw only from the rng argument"
)
