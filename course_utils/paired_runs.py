"""Paired runs over seeds: every arm of an experiment runs once per seed, and the seeds pair them.

An experiment compares arms ("BN", "GN"; "forget bias 0", "forget bias 1") that differ in one thing.
Run each arm with the same seeds, so that arm A and arm B of seed s share the initial weights' random
state and the batch order; the per-seed differences then cancel what the seed decides::

    results[arm] = [run(arm, seed) for seed in seeds]     # shape (len(seeds),), one value per seed
    d_s = results[treatment][s] - results[control][s]      # what evidence.compare_paired reads

``over_seeds`` is that double loop with one progress bar, ``compare_arms`` hands two arms to
``evidence.compare_paired``, and ``plot_paired`` draws each seed as a line joining its arms (a picture
of the pairing: parallel lines mean the seeds agree on the effect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.evidence import Comparison, compare_paired
from course_utils.progress import progress_bar
from course_utils.runtime import grading


def over_seeds(
    run: Callable[[str, int], float],
    arms: Iterable[str],
    seeds: Sequence[int],
    *,
    desc: str = "runs",
) -> dict[str, np.ndarray]:
    """``{arm: array of run(arm, seed) for seed in seeds}`` (float64, shape (len(seeds),)).

    Seeds are the outer loop, so an interrupted run leaves whole pairs. A progress bar counts the runs
    (none under nbgrader).
    """
    arms = list(arms)
    if not arms or not seeds:
        raise ValueError("over_seeds needs at least one arm and one seed")
    values: dict[str, list[float]] = {arm: [] for arm in arms}
    jobs = [(seed, arm) for seed in seeds for arm in arms]
    for seed, arm in progress_bar(jobs, desc=desc, show=not grading()):
        values[arm].append(float(run(arm, seed)))
    return {arm: np.asarray(v, dtype=np.float64) for arm, v in values.items()}


def compare_arms(
    results: dict[str, np.ndarray],
    treatment: str,
    control: str,
    *,
    min_effect: float,
    better: str = "higher",
) -> Comparison:
    """``evidence.compare_paired(results[treatment], results[control], ...)``, paired by seed."""
    return compare_paired(
        results[treatment], results[control], min_effect=min_effect, better=better
    )


def plot_paired(
    results: dict[str, np.ndarray],
    arms: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    scale: float = 1.0,
    ylabel: str = "",
    title: str = "",
) -> plt.Axes:
    """One grey line per seed across ``arms`` (default: all, in order), the arms' means in black."""
    arms = list(arms or results)
    ax = ax or plt.gca()
    table = scale * np.stack([results[arm] for arm in arms])  # (arms, seeds)
    x = np.arange(len(arms))
    ax.plot(x, table, "o-", color="0.6", lw=1, ms=4)
    ax.plot(x, table.mean(axis=1), "s-", color="black", lw=2, ms=7, label="mean over seeds")
    ax.set_xticks(x, labels=arms)
    ax.set_xlim(-0.4, len(arms) - 0.6)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return ax
