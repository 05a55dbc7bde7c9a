"""course_utils.paired_runs: every arm runs on every seed, and the seeds pair the arms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.evidence import HOLDS  # noqa: E402
from course_utils.paired_runs import compare_arms, over_seeds, plot_paired  # noqa: E402


def test_over_seeds_runs_each_arm_on_each_seed_in_seed_order() -> None:
    calls = []

    def run(arm: str, seed: int) -> float:
        calls.append((arm, seed))
        return 10 * seed + (1 if arm == "b" else 0)

    results = over_seeds(run, ["a", "b"], [3, 5])
    assert calls == [("a", 3), ("b", 3), ("a", 5), ("b", 5)]  # whole pairs first
    np.testing.assert_array_equal(results["a"], [30, 50])
    np.testing.assert_array_equal(results["b"], [31, 51])
    assert results["a"].dtype == np.float64


def test_over_seeds_rejects_empty_arms_or_seeds() -> None:
    with pytest.raises(ValueError):
        over_seeds(lambda arm, seed: 0.0, [], [0])
    with pytest.raises(ValueError):
        over_seeds(lambda arm, seed: 0.0, ["a"], [])


def test_compare_arms_is_paired_by_seed() -> None:
    # The seed effect (0, 100, 200) is huge, the arm effect a constant +1: paired, the interval is tight.
    results = {"a": np.array([0.0, 100.0, 200.0]), "b": np.array([1.0, 101.1, 200.9])}
    cmp = compare_arms(results, "b", "a", min_effect=0.5)
    assert cmp.effect == pytest.approx(1.0)
    assert cmp.verdict == HOLDS
    assert cmp.n == 3


def test_plot_paired_draws_one_line_per_seed_and_the_mean() -> None:
    fig, ax = plt.subplots()
    plot_paired({"a": np.array([1.0, 2.0]), "b": np.array([2.0, 3.0])}, ax=ax, scale=100)
    assert len(ax.lines) == 3  # two seeds and the mean
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), [150, 250])
    plt.close(fig)
