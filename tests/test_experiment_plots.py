"""Stage 3's plot layouts draw what they are given and refuse unpaired arms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from course_utils.experiment_plots import axes_row, curves, paired_seeds, step_curves


def test_each_layout_draws_one_line_per_series() -> None:
    fig = curves({"a": [1, 2, 3], "b": [3, 2, 1]}, xlabel="x", ylabel="y", reference=(2, "ref"))
    assert len(fig.axes[0].lines) == 3
    fig = step_curves({"a": list(range(30))}, window=10)
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[0].lines[1].get_xdata()) == 21
    fig, axes = axes_row(2)
    paired_seeds({"control": [1, 2], "treatment": [2, 3]}, ylabel="y", ax=axes[1])
    assert len(axes[1].lines) == 2 + 1  # one line per seed, then the means
    plt.close("all")


def test_paired_seeds_needs_one_value_per_seed_in_every_arm() -> None:
    with pytest.raises(ValueError, match="one value per seed"):
        paired_seeds({"a": [1, 2], "b": [1]}, ylabel="y")
