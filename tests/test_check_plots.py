"""course_utils.check_plots and sanity.other_sample_ratio: figures with the expected content."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import check_plots  # noqa: E402
from course_utils.evidence import compare_paired, deterministic  # noqa: E402
from course_utils.sanity import other_sample_ratio  # noqa: E402


def teardown_function() -> None:
    plt.close("all")


def test_curves_draws_each_curve_and_reference_line_and_smooths() -> None:
    fig = check_plots.curves(
        {"a": [3, 2, 1, 0.5], "b": torch.ones(4)}, hlines={"ln C": 2.3}, smooth=2
    )
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert np.allclose(ax.lines[0].get_ydata(), [2.5, 1.5, 0.75])  # running mean over 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "ln C"]


def test_intervals_draws_one_row_per_comparison_coloured_by_verdict() -> None:
    rng = np.random.default_rng(0)
    holds = compare_paired(rng.normal(1, 0.1, 20), np.zeros(20), min_effect=0.1)
    none = deterministic(0.01, min_effect=0.1)
    fig = check_plots.intervals({"holds": holds, "none": none}, scale=100, unit="points")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["none", "holds"]
    segments = [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]
    ]
    assert any(line.get_color() == "tab:green" for line in segments)
    with pytest.raises(ValueError):
        check_plots.intervals({})


def test_prediction_dynamics_has_one_panel_per_image() -> None:
    probs = torch.softmax(torch.randn(5, 6, 3), dim=2)
    fig = check_plots.prediction_dynamics(
        probs, [0, 1, 2, 0, 1, 2], range(0, 25, 5), ["a", "b", "c"], ncols=4
    )
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 6 and len(visible[0].lines) == 3
    with pytest.raises(ValueError):
        check_plots.prediction_dynamics(probs[0], [0], [0], ["a"])


def test_labels_and_predictions_and_dependence_bars() -> None:
    fig = check_plots.labels_and_predictions(
        torch.tensor([0, 1, 2]), {"at init": [1, 1, 1], "after": [0, 1, 2]}, 3
    )
    assert len(fig.axes[0].collections) == 3
    fig = check_plots.dependence_bars(
        {"ok": torch.tensor([0.0, 2.0, 0.0]), "mixes": torch.tensor([1.0, 2.0, 0.5])}, 1
    )
    assert len(fig.axes) == 2 and "0.5" in fig.axes[1].get_title()


def test_other_sample_ratio() -> None:
    assert other_sample_ratio(torch.tensor([0.0, 2.0, 0.0]), 1) == 0.0
    assert other_sample_ratio(torch.tensor([1.0, 2.0, 0.5]), 1) == 0.5
    assert other_sample_ratio(torch.tensor([1.0, 4.0]), -1) == 0.25
    assert math.isnan(other_sample_ratio(torch.tensor([1.0, 0.0]), 1))
