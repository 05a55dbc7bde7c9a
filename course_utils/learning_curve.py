"""The learning curve (book 11.3): error against training-set size on log-log axes, extrapolated.

Error often falls as a power law (Hestness et al. 2017), ``err ~ a n^b`` with b < 0, a straight line
of slope b on log-log axes: each doubling of the data multiplies the error by 2^b. Power laws bend
towards the irreducible error, so ``extrapolate`` uses the flatter of the fitted slope and the last
segment's slope, on purpose: a line fitted on small sets over-promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes


@dataclass(frozen=True)
class PowerLaw:
    """``slope``: fitted over all points; ``last_slope``: of the last segment; ``used``: the flatter."""

    sizes: np.ndarray
    errors: np.ndarray
    slope: float
    last_slope: float

    @property
    def used(self) -> float:
        return max(self.slope, self.last_slope)

    def extrapolate(self, factor: float) -> float:
        """The error at ``factor`` times the largest size, from the last point with slope ``used``."""
        return float(self.errors[-1] * factor**self.used)

    def data_to_halve(self) -> float:
        """How many times the data would halve the error (inf if the curve does not fall)."""
        return float(2 ** (-1 / self.used)) if self.used < 0 else float("inf")


def fit_power_law(sizes: Sequence[float], errors: Sequence[float], floor: float = 1e-4) -> PowerLaw:
    """Least-squares line through (log n, log err); errors below ``floor`` count as ``floor``."""
    n = np.asarray(sizes, dtype=float)
    e = np.maximum(np.asarray(errors, dtype=float), floor)
    if n.size < 2 or n.shape != e.shape:
        raise ValueError("need at least two (size, error) points of equal count")
    slope = float(np.polyfit(np.log(n), np.log(e), 1)[0])
    last = float(np.log(e[-1] / e[-2]) / np.log(n[-1] / n[-2]))
    return PowerLaw(n, e, slope, last)


def plot_learning_curve(law: PowerLaw, factor: float = 10.0, ax: Axes | None = None) -> Axes:
    """Measured points and the extrapolation to ``factor`` times the data, on log-log axes (%)."""
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 3.6))[1]
    ax.loglog(law.sizes, 100 * law.errors, "o-", label="measured (test split)")
    future = np.array([law.sizes[-1], factor * law.sizes[-1]])
    ax.loglog(
        future,
        100 * law.errors[-1] * (future / future[0]) ** law.used,
        "--",
        label=f"extrapolated, slope {law.used:.2f}",
    )
    ax.set(
        xlabel="training images (log scale)",
        ylabel="test error, % (log scale)",
        title="learning curve",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax
