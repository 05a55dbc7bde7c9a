"""Stage 6's ensemble experiments: members, gains paired per image, diversity, snapshots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from course_utils import ensemble_study as es
from course_utils.data import Split
from course_utils.evidence import compare_paired


def _onehot_logits(predicted: list[int], classes: int = 3) -> torch.Tensor:
    return 10 * torch.nn.functional.one_hot(torch.tensor(predicted), classes).float()


def test_disagreement_is_the_mean_pairwise_share_of_differing_predictions() -> None:
    a, b, c = (
        _onehot_logits([0, 1, 2, 0]),
        _onehot_logits([0, 1, 0, 0]),
        _onehot_logits([1, 1, 0, 0]),
    )
    # pairs: (a, b) 1/4, (a, c) 2/4, (b, c) 1/4
    assert es.disagreement([a, b, c]) == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert es.disagreement([a]) == 0.0


def test_ensemble_gain_is_paired_per_image() -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    # each member errs on a different pair of images; the majority is always right
    members = [
        _onehot_logits([1, 1, 2, 0, 1, 0]),
        _onehot_logits([0, 0, 2, 1, 1, 2]),
        _onehot_logits([0, 1, 0, 0, 2, 2]),
    ]
    result = es.ensemble_gain(members, labels, min_effect=0.01)
    assert result.member_accuracy == pytest.approx([4 / 6] * 3)
    assert result.ensemble_accuracy == 1.0 and result.error_reduction == 1.0
    # the oracle: ensemble correct (all 1) against the share of members right on each image
    member_share = np.array([2, 2, 2, 2, 2, 2]) / 3
    assert result.comparison == compare_paired(np.ones(6), member_share, min_effect=0.01)


def test_size_curve_averages_over_subsets() -> None:
    labels = torch.tensor([0, 1, 2])
    logits = [_onehot_logits([0, 1, 0]), _onehot_logits([0, 0, 2]), _onehot_logits([1, 1, 2])]
    accs, losses = es.size_curve(logits, labels)
    assert accs[0] == pytest.approx(2 / 3)
    assert len(accs) == len(losses) == 3 and accs[-1] == 1.0


def _tiny(n: int = 96, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 12, 12, generator=g), torch.randint(0, 3, (n,), generator=g))


def test_members_separate_initialisation_and_data_order() -> None:
    split = _tiny()

    def weights(init: int, order: int) -> torch.Tensor:
        model = es.train_member(split, 3, init_seed=init, order_seed=order, epochs=1, width=2)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    base = weights(0, 0)
    assert torch.equal(base, weights(0, 0))
    assert not torch.equal(base, weights(0, 1)) and not torch.equal(base, weights(1, 0))


def test_snapshot_run_returns_one_model_per_cycle() -> None:
    snapshots = es.snapshot_run(_tiny(), 3, cycles=3, cycle_epochs=1, width=2)
    assert len(snapshots) == 3 and all(not m.training for m in snapshots)
    x = _tiny(4, seed=1).images
    assert not torch.equal(snapshots[0](x), snapshots[-1](x))


def test_plots_and_table_render() -> None:
    labels = torch.tensor([0, 1, 2, 0])
    logits = [_onehot_logits([0, 1, 2, 1]), _onehot_logits([0, 1, 1, 0])]
    result = es.ensemble_gain(logits, labels, min_effect=0.01)
    table = es.diversity_table({"seed": result})
    assert table.count("\n") == 2 and "| seed |" in table
    for fig in (
        es.plot_diversity({"seed": result}),
        es.plot_size_curve([0.9, 0.95], [0.3, 0.2], [0.9, 0.91]),
        es.plot_snapshots([0.9, 0.92], [0.92, 0.93], 0.91),
    ):
        assert fig.axes
        matplotlib.pyplot.close(fig)
