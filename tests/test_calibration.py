"""course_utils.calibration: ECE and the signed gap against a plain loop, temperature against scipy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402

from course_utils.calibration import (  # noqa: E402
    confidence_bins,
    confidence_gap,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)


def _ece_loop(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """The oracle: Guo et al.'s definition, one prediction at a time, in float64."""
    total, n = 0.0, len(labels)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            i
            for i in range(n)
            if lo <= probs[i].max() < hi or (b == bins - 1 and probs[i].max() == 1)
        ]
        if members:
            conf = np.mean([probs[i].max() for i in members])
            acc = np.mean([probs[i].argmax() == labels[i] for i in members])
            total += len(members) / n * abs(acc - conf)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_the_loop_definition(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    probs = (3 * torch.randn(300, 5, generator=g, dtype=torch.float64)).softmax(dim=1)
    labels = torch.randint(0, 5, (300,), generator=g)
    assert expected_calibration_error(probs, labels) == pytest.approx(
        _ece_loop(probs.numpy(), labels.numpy()), abs=1e-12
    )
    bins = confidence_bins(probs, labels)
    assert bins.count.sum() == 300 and len(bins.edges) == 11


def test_the_signed_gap_says_which_way_the_model_is_wrong() -> None:
    labels = torch.zeros(100, dtype=torch.long)
    sure = torch.tensor([[0.9, 0.1]]).repeat(100, 1)
    over = sure.clone()
    over[:30] = torch.tensor([0.1, 0.9])  # 70% right at confidence 0.9: over-confident by 0.2
    assert confidence_gap(over, labels) == pytest.approx(0.2)
    under = torch.tensor([[0.6, 0.4]]).repeat(100, 1)  # always right at confidence 0.6
    assert confidence_gap(under, labels) == pytest.approx(-0.4)
    # ECE is 0.2 and 0.4: unsigned, it cannot tell the two apart by sign.
    assert expected_calibration_error(over, labels) == pytest.approx(0.2)
    assert expected_calibration_error(under, labels) == pytest.approx(0.4)


def test_fit_temperature_finds_scipy_minimum_and_recovers_a_planted_temperature() -> None:
    g = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(4000, 10, generator=g, dtype=torch.float64)
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    logits = 3.0 * true_logits  # an over-confident model: the right T is about 3
    t = fit_temperature(logits, labels)
    oracle = minimize_scalar(
        lambda log_t: float(F.cross_entropy(logits / np.exp(log_t), labels)),
        bounds=(np.log(0.05), np.log(20)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert t == pytest.approx(float(np.exp(oracle.x)), rel=1e-4)
    assert 2.7 < t < 3.3
    assert expected_calibration_error((logits / t).softmax(1), labels) < expected_calibration_error(
        logits.softmax(1), labels
    )


def test_input_shapes_are_checked_and_the_diagram_draws() -> None:
    with pytest.raises(ValueError):
        expected_calibration_error(torch.rand(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        fit_temperature(torch.rand(5), torch.zeros(5, dtype=torch.long))
    probs = torch.rand(50, 4).softmax(1)
    ax = reliability_diagram(probs, torch.randint(0, 4, (50,)), title="x")
    assert len(ax.patches) == 10 and "gap" in ax.get_title()
    plt.close("all")
