"""course_utils.small_batch_norm: the BN/GN MLP, BN's batch-of-two collapse, the paired sweep."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils.data.registry import Split  # noqa: E402
from course_utils.small_batch_norm import (  # noqa: E402
    PAPER_ERROR,
    NormSweep,
    batch_size_sweep,
    feature_norm,
    norm_mlp,
    plot_norm_sweep,
    two_values_normalised,
)


def test_feature_norm_kinds() -> None:
    assert isinstance(feature_norm("batch", 16), nn.BatchNorm1d)
    gn = feature_norm("group", 16, groups=4)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 4
    with pytest.raises(ValueError):
        feature_norm("group", 10, groups=4)
    with pytest.raises(ValueError):
        feature_norm("layer", 16)


def test_norm_mlp_shapes_and_layout() -> None:
    model = norm_mlp(12, 3, "group", width=8, depth=2, groups=4)
    assert model(torch.randn(5, 1, 3, 4)).shape == (5, 3)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [m.bias is None for m in linears] == [True, True, False]  # the norm's shift is the bias
    assert sum(isinstance(m, nn.GroupNorm) for m in model) == 2


def test_group_norm_mlp_output_does_not_depend_on_the_batch() -> None:
    torch.manual_seed(0)
    model = norm_mlp(6, 2, "group", width=8, groups=2).train()
    x = torch.randn(4, 6)
    torch.testing.assert_close(model(x)[:1], model(x[:1]))


@pytest.mark.parametrize(("a", "b"), [(0.0, 1.0), (-50.0, 3.0), (7.0, 7.5)])
def test_batch_norm_of_two_values_is_minus_one_and_one(a: float, b: float) -> None:
    low, high = two_values_normalised(a, b)
    assert low == pytest.approx(-1.0, abs=1e-3) and high == pytest.approx(1.0, abs=1e-3)


def test_sweep_runs_every_norm_batch_and_seed_and_compares_paired() -> None:
    torch.manual_seed(0)
    x = torch.randn(24, 1, 2, 2)
    split = Split(x, (x.sum(dim=(1, 2, 3)) > 0).long())

    def make(norm: str) -> nn.Module:
        return norm_mlp(4, 2, norm, width=8, depth=1, groups=2)

    sweep = batch_size_sweep(make, split, split, batch_sizes=(2, 8), seeds=(0, 1))
    assert set(sweep.accuracy) == {"batch", "group"}
    assert all(sweep.accuracy[n][b].shape == (2,) for n in sweep.accuracy for b in (2, 8))
    again = batch_size_sweep(make, split, split, batch_sizes=(2, 8), seeds=(0, 1))
    np.testing.assert_array_equal(sweep.accuracy["batch"][2], again.accuracy["batch"][2])
    cmp = sweep.compare(2)
    diff = sweep.accuracy["group"][2] - sweep.accuracy["batch"][2]
    assert cmp.effect == pytest.approx(diff.mean()) and cmp.n == 2


def test_error_is_in_percent_and_plot_has_both_panels() -> None:
    acc = {b: np.array([0.9, 0.8]) for b in (2, 32)}
    sweep = NormSweep((2, 32), (0, 1), {"batch": acc, "group": acc})
    np.testing.assert_allclose(sweep.error("batch", 2), [10.0, 20.0])
    axes = plot_norm_sweep(sweep)
    assert len(axes[0].lines) == 2  # the paper's two curves
    assert len(axes[1].lines) == 2 * (1 + 2)  # per norm: the mean and one dot series per seed
    assert PAPER_ERROR["batch"][2] > PAPER_ERROR["group"][2]
    plt.close("all")


def test_as_dict_is_plain_json() -> None:
    import json

    sweep = NormSweep(
        (2,), (0, 1), {"batch": {2: np.array([0.5, 0.6])}, "group": {2: np.array([0.7, 0.8])}}
    )
    assert json.loads(json.dumps(sweep.as_dict())) == {
        "batch": {"2": [0.5, 0.6]},
        "group": {"2": [0.7, 0.8]},
    }
