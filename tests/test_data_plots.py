"""Tests of course_utils.data_plots: every picture draws what it is given and returns a Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import data_plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_mosaic_is_one_image_of_the_whole_grid():
    fig = data_plots.mosaic(torch.rand(25, 1, 8, 8), nrow=10, title="t")
    (ax,) = fig.axes
    (picture,) = ax.get_images()
    # make_grid: 3 rows x 10 columns of 8-pixel images with 2-pixel padding
    assert picture.get_array().shape[:2] == (3 * 10 + 2, 10 * 10 + 2)
    assert ax.get_title() == "t"


def test_per_class_boxplot_draws_one_box_per_class():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    fig = data_plots.per_class_boxplot(values, torch.tensor([0, 0, 0, 1, 1, 1]), ["a", "b"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    medians = [line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1]
    assert 2.0 in medians and 11.0 in medians


def test_distance_histograms_one_panel_per_distance_with_the_threshold_on_log_panels():
    panels = {
        "raw": {"copies": np.array([0.1, 0.2]), "others": np.array([1.0, 2.0])},
        "log": {"copies": torch.tensor([0.0, 1e-3]), "others": torch.tensor([0.05, 0.5])},
    }
    fig = data_plots.distance_histograms(panels, log_panels=["log"], threshold=0.015)
    raw, log = fig.axes
    assert raw.get_xscale() == "linear" and log.get_xscale() == "log"
    assert any(list(line.get_xdata()) == [0.015, 0.015] for line in log.lines)
    assert len(raw.patches) == 2 * 49  # 50 edges: 49 bars per group


def test_labelled_grid_titles_given_and_predicted_labels_red_where_highlighted():
    fig = data_plots.labelled_grid(
        torch.rand(2, 1, 4, 4), [0, 1], torch.tensor([1, 1]), ["zero", "one"], "t", [True, False]
    )
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["given zero / pred one", "given one / pred one"]
    assert titled[0].title.get_color() == "red" and titled[1].title.get_color() == "black"


def test_split_spread_places_single_folds_and_kfold_means_on_two_rows():
    scores = np.array([[0.90, 0.92, 0.94], [0.91, 0.93, 0.95]])
    fig = data_plots.split_spread(scores, n_val=100, standard_errors=(0.03, 0.017))
    ax = fig.axes[0]
    singles, means = ax.collections[:2]
    np.testing.assert_allclose(singles.get_offsets()[:, 0], scores.ravel())
    np.testing.assert_allclose(means.get_offsets()[:, 0], scores.mean(axis=1))
    assert "3-fold mean" in ax.get_yticklabels()[1].get_text()


def test_versions_grid_shares_one_colour_scale_per_row():
    faint = torch.rand(3, 1, 8, 8)
    versions = {"raw": torch.cat([faint, 0.25 * faint]), "doubled": 2 * torch.cat([faint, faint])}
    fig = data_plots.versions_grid(versions, title="t")
    assert len(fig.axes) == 2 * 6
    raw_row = fig.axes[:6]
    limits = {ax.get_images()[0].get_clim() for ax in raw_row}
    assert len(limits) == 1  # one scale for the row: the faint copies look faint
    low, high = limits.pop()
    assert low == pytest.approx(float(versions["raw"].min()))
    assert high == pytest.approx(float(versions["raw"].max()))
    assert "raw" in raw_row[0].get_ylabel()
    assert fig._suptitle.get_text() == "t"


def test_versions_grid_refuses_rows_of_different_images():
    with pytest.raises(ValueError, match="same images"):
        data_plots.versions_grid({"a": torch.rand(2, 1, 4, 4), "b": torch.rand(3, 1, 4, 4)})
    with pytest.raises(ValueError, match="at least one"):
        data_plots.versions_grid({})
