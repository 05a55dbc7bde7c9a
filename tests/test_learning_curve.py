"""course_utils.learning_curve: an exact power law gives back its slope and its extrapolation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.learning_curve import fit_power_law, plot_learning_curve  # noqa: E402


def test_an_exact_power_law() -> None:
    sizes = np.array([100, 300, 1000, 3000])
    law = fit_power_law(sizes, 2.0 * sizes**-0.5)
    assert law.slope == pytest.approx(-0.5) and law.last_slope == pytest.approx(-0.5)
    assert law.extrapolate(4) == pytest.approx(2.0 * 12000**-0.5)
    assert law.data_to_halve() == pytest.approx(4.0)


def test_the_flatter_slope_is_used_and_a_flat_curve_never_halves() -> None:
    law = fit_power_law([100, 1000, 10000], [0.2, 0.05, 0.04])
    assert law.used == law.last_slope > law.slope
    flat = fit_power_law([100, 1000], [0.1, 0.1])
    assert flat.data_to_halve() == float("inf")
    assert fit_power_law([10, 20], [0.0, 0.0]).errors.min() > 0  # no log(0)
    with pytest.raises(ValueError):
        fit_power_law([10], [0.1])
    ax = plot_learning_curve(law)
    assert len(ax.lines) == 2
    plt.close("all")
